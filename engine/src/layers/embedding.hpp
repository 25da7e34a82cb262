#pragma once
// Embedding: a learned vector for each category index.
#include "layers/part.hpp"

namespace ember::layer_part {

template <>
struct Part<Embedding> {
  static constexpr const char* name = "embedding";
  static constexpr const char* keras_name = "Embedding";
  // DIM alone: sized by the first fit on a table, for its embedded columns.
  static constexpr const char* spelling = "embedding:DIM or embedding:CATEGORIES:DIM[:COLUMNS]";
  static constexpr const char* meaning =
      "the first layer; DIM alone sets the vector size of the --embed columns' categories, CATEGORIES:DIM[:COLUMNS] "
      "reads the "
      "last COLUMNS inputs (all unless given) as category indices 0 to CATEGORIES - 1 and puts a learned vector of "
      "DIM values in place of each";
  static Embedding from_spelling(std::span<const std::string> items) {
    std::vector<std::int64_t> sizes;
    for (const std::string& item : items.subspan(1)) {
      sizes.push_back(whole_number(item));
      if (sizes.back() == 0) throw InputError(fmt::format("'{}' is not a positive whole number", item));
    }
    if (sizes.empty() || sizes.size() > 3)
      throw InputError("an Embedding takes DIM (for the embedded columns) or CATEGORIES:DIM[:COLUMNS]");
    return sizes.size() == 1 ? Embedding(Embedding::kFromTable, sizes[0])
                             : Embedding(sizes[0], sizes[1], sizes.size() == 3 ? sizes[2] : 0);
  }
  // Indices must be exact in float32: every whole number up to 2^24 is.
  static constexpr std::int64_t kMaxCategories = std::int64_t{1} << 24;
  static void check(const Embedding& embedding) {
    if (embedding.input_dim < 0 || embedding.input_dim > kMaxCategories)
      throw InputError(
          fmt::format("an Embedding layer's input_dim (categories) must be 1 to {} (or 0: sized by "
                      "the first fit on a table), got {}",
                      kMaxCategories, embedding.input_dim));
    if (embedding.output_dim < 1 || embedding.output_dim > ParameterLayout::kMaxWidth)
      throw InputError(fmt::format("an Embedding layer's output_dim must be 1 to {}, got {}",
                                   ParameterLayout::kMaxWidth, embedding.output_dim));
    if (embedding.columns < 0)
      throw InputError(fmt::format("an Embedding layer's columns must be 0 (every input column) or more, got {}",
                                   embedding.columns));
  }
  static std::int64_t index_columns(const Embedding& embedding, std::int64_t in) {
    if (embedding.input_dim == Embedding::kFromTable)
      throw InputError(
          fmt::format("{} is sized by the columns a fit on a table embeds (ColumnSpec::embed); fit it "
                      "on a table, or give its input_dim",
                      describe(embedding)));
    if (embedding.columns > in)
      throw InputError(
          fmt::format("{} reads {} index columns but its input has {}", describe(embedding), embedding.columns, in));
    return embedding.columns == 0 ? in : embedding.columns;
  }
  static std::int64_t output_width(const Embedding& embedding, std::int64_t in) {
    const std::int64_t columns = index_columns(embedding, in);
    const std::int64_t passed = in - columns;
    if (embedding.output_dim > (ParameterLayout::kMaxWidth - passed) / columns)
      throw InputError(fmt::format("{} on {} input columns gives more than {} outputs; use a smaller output_dim",
                                   describe(embedding), in, ParameterLayout::kMaxWidth));
    return passed + columns * embedding.output_dim;
  }
  // As torch.nn.Embedding's state_dict: weight (input_dim, output_dim).
  static std::vector<ParameterShape> parameters(const Embedding& embedding, std::int64_t) {
    return {{"weight", {embedding.input_dim, embedding.output_dim}}};
  }
  static void initialize(const Embedding& embedding, std::int64_t, std::uint64_t seed, std::vector<float>& parameters) {
    Random random(seed);
    for (std::int64_t i = 0; i < embedding.input_dim * embedding.output_dim; ++i)
      parameters.push_back(static_cast<float>(random.normal()));
  }
  static Embedding sized_for_table(const Embedding& embedding, std::int64_t columns, std::int64_t categories) {
    if (embedding.input_dim != Embedding::kFromTable) {
      if (columns > 0 && (embedding.columns != columns || embedding.input_dim < categories))
        throw InputError(
            fmt::format("the table's {} embedded columns need an Embedding of {} index columns and {} "
                        "categories or more, not {}; use Embedding(0, {}), sized by fit",
                        columns, columns, categories, describe(embedding), embedding.output_dim));
      return embedding;
    }
    if (columns == 0)
      throw InputError(
          fmt::format("{} is sized by the columns ColumnSpec::embed names, and it names none; name the "
                      "categorical columns to embed",
                      describe(embedding)));
    return Embedding(categories, embedding.output_dim, columns);
  }
  static Indices indices(const Embedding& embedding, std::int64_t in) {
    return {index_columns(embedding, in), embedding.input_dim};
  }
  static Buffers buffers(const Embedding&, bool) { return {true, false}; }
  static ConstView forward(const Embedding& embedding, const Slots& slots, const Pass& pass, ConstView input) {
    const View output{slots.output, pass.rows, slots.out};
    pass.backend.embedding_forward(input, table(embedding, slots), index_columns(embedding, slots.in), output);
    return output;
  }
  static bool backward(const Embedding& embedding, const Slots& slots, const Pass& pass, ConstView input, ConstView,
                       View dy, bool, std::optional<ConstView>, std::optional<View> dx) {
    pass.backend.embedding_backward(dy, input, index_columns(embedding, slots.in),
                                    View{slots.gradients, embedding.input_dim, embedding.output_dim}, dx);
    return false;
  }
  static bool folds_relu(const Embedding&) { return false; }
  static SettingsJson to_json(const Embedding& embedding) {
    return {{"type", name},
            {"input_dim", embedding.input_dim},
            {"output_dim", embedding.output_dim},
            {"columns", embedding.columns}};
  }
  static Embedding from_json(const SettingsJson& json) {
    return Embedding(json.at("input_dim").get<std::int64_t>(), json.at("output_dim").get<std::int64_t>(),
                     json.at("columns").get<std::int64_t>());
  }
  static std::string describe(const Embedding& embedding) {
    return embedding.columns == 0 ? fmt::format("Embedding({}, {})", embedding.input_dim, embedding.output_dim)
                                  : fmt::format("Embedding({}, {}, columns={})", embedding.input_dim,
                                                embedding.output_dim, embedding.columns);
  }
  // The index columns as int64, Gather's rows of the table, flattened to (rows, columns * dim) after
  // the values that pass through. An index out of range is an error in ONNX Runtime where Ember
  // gives NaNs.
  static std::string onnx(const Embedding& embedding, OnnxGraph& g, const OnnxLayer& at) {
    const std::int64_t columns = index_columns(embedding, at.in), passed = at.in - columns;
    const auto slice = [&](std::int64_t begin, std::int64_t end) {
      return g.node("Slice",
                    {at.x, g.int64s("begin", {1}, {begin}), g.int64s("end", {1}, {end}), g.int64s("axis", {1}, {1})});
    };
    const std::string indices = g.to_int64(passed == 0 ? at.x : slice(passed, at.in));
    const std::string vectors = g.node("Gather", {onnx_tensor(embedding, g, at, "weight"), indices});
    g.attribute("axis", std::int64_t{0});
    const std::string flat = g.node("Reshape", {vectors, g.int64s("shape", {2}, {0, columns * embedding.output_dim})});
    return passed == 0 ? flat : g.columns({slice(0, passed), flat});
  }

 private:
  static ConstView table(const Embedding& embedding, const Slots& slots) {
    return {slots.parameters, embedding.input_dim, embedding.output_dim};
  }
};

}  // namespace ember::layer_part
