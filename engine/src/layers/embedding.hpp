#pragma once
// Embedding: a learned vector for each category index.
#include <limits>

#include "embedding_math.hpp"
#include "layers/part.hpp"

namespace ember::layer_part {

/// The lookup's two ops: float64 sums (the reference) and float32 sums in the order the CUDA kernel
/// adds them (the fast CPU path: the same bits); kernels/layers/embedding.cu is the GPU's. x (rows,
/// in) holds in - columns values that pass through, then columns category indices.
///   forward:  y (rows, in - columns + columns * dim) = those values, then row x[r][in - columns + j]
///             of the table (categories, dim) for each index column j; an index that is not a whole
///             number 0 to categories - 1 gives NaNs (embedding_math::table_row).
///   backward: table_gradient = for each table row, the sum of the dy vectors that read it (rows in
///             order, then index columns in order; a bad index adds nothing); dx = dy on the values
///             that passed through and 0 on the index columns.
struct EmbeddingOps {
  // forward: in x, table; out y; settings columns.
  // backward: in dy, x; out table_gradient, dx (or null); settings columns.
  static void check_forward(const OpArgs& a) {
    check_operand_counts(a, "embedding_forward", 2, 1, 1, "columns");
    check_shapes("embedding_forward", a.in[0], a.in[1], a.settings[0], a.out[0]);
  }
  static void check_backward(const OpArgs& a) {
    check_operand_counts(a, "embedding_backward", 2, 2, 1, "columns");
    check_shapes("embedding_backward", a.in[1], a.out[0], a.settings[0], a.in[0]);
    if (a.out[1].data != nullptr) check_same_shape(a.in[1], a.out[1], "embedding_backward");
  }
  /// The count of index columns a checked op's setting holds.
  static std::int64_t columns(const OpArgs& a) { return static_cast<std::int64_t>(a.settings[0]); }
  // Copies only: the fast CPU path runs it too.
  static void forward(const OpArgs& a) {
    const ConstView x = a.in[0], table = a.in[1];
    const View y = a.out[0];
    const std::int64_t indices = columns(a), passed = x.cols - indices, dim = table.cols;
    for_rows(y, 1.0, [&](std::int64_t r) {
      for (std::int64_t c = 0; c < passed; ++c) y(r, c) = x(r, c);
      for (std::int64_t j = 0; j < indices; ++j) {
        const long long row = embedding_math::table_row(x(r, passed + j), table.rows);
        for (std::int64_t d = 0; d < dim; ++d)
          y(r, passed + j * dim + d) = row < 0 ? std::numeric_limits<float>::quiet_NaN() : table(row, d);
      }
    });
  }
  static void reference_backward(const OpArgs& a) {
    const ConstView dy = a.in[0], x = a.in[1];
    const View table_gradient = a.out[0];
    const std::int64_t indices = columns(a), passed = x.cols - indices, dim = table_gradient.cols;
    std::vector<double> sums(static_cast<std::size_t>(table_gradient.size()), 0.0);
    for (std::int64_t r = 0; r < x.rows; ++r)
      for (std::int64_t j = 0; j < indices; ++j) {
        const long long row = embedding_math::table_row(x(r, passed + j), table_gradient.rows);
        if (row < 0) continue;
        for (std::int64_t d = 0; d < dim; ++d)
          sums[static_cast<std::size_t>(row * dim + d)] += dy(r, passed + j * dim + d);
      }
    for (std::int64_t i = 0; i < table_gradient.size(); ++i)
      table_gradient.data[i] = static_cast<float>(sums[static_cast<std::size_t>(i)]);
    input_gradient(a);
  }
  // Threads take disjoint blocks of the table's columns.
  static void fast_backward(const OpArgs& a) {
    const ConstView dy = a.in[0], x = a.in[1];
    const View table_gradient = a.out[0];
    const std::int64_t indices = columns(a), passed = x.cols - indices, dim = table_gradient.cols;
    const double seconds = threads::single_thread_seconds(
        0, static_cast<double>(table_gradient.size()) + 2.0 * static_cast<double>(x.rows * indices * dim));
    threads::for_ranges(dim, seconds, 16, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t t = 0; t < table_gradient.rows; ++t)
        std::fill(&table_gradient(t, 0) + begin, &table_gradient(t, 0) + end, 0.0f);
      for (std::int64_t r = 0; r < x.rows; ++r)
        for (std::int64_t j = 0; j < indices; ++j) {
          const long long row = embedding_math::table_row(x(r, passed + j), table_gradient.rows);
          if (row < 0) continue;
          const float* g = &dy(r, passed + j * dim);
          float* sum = &table_gradient(row, 0);
          for (std::int64_t d = begin; d < end; ++d) sum[d] += g[d];
        }
    });
    input_gradient(a);
  }

 private:
  /// 1 <= columns <= x.cols (a whole number), y (x.rows, x.cols - columns + columns * table.cols), a
  /// non-empty table.
  static void check_shapes(const char* op, ConstView x, ConstView table, float count, ConstView y) {
    if (!(count >= 1.0f && count <= static_cast<float>(x.cols)) || count != std::floor(count) || table.rows < 1 ||
        table.cols < 1)
      throw Error(fmt::format("{}: {} index columns of x ({}, {}) into a table ({}, {})", op, count, x.rows, x.cols,
                              table.rows, table.cols));
    const auto n = static_cast<std::int64_t>(count);
    const std::int64_t width = x.cols - n + n * table.cols;
    if (y.rows != x.rows || y.cols != width)
      throw Error(fmt::format("{}: the output is ({}, {}), not ({}, {})", op, y.rows, y.cols, x.rows, width));
  }
  static void input_gradient(const OpArgs& a) {
    const ConstView dy = a.in[0], x = a.in[1];
    const View dx = a.out[1];
    if (dx.data == nullptr) return;
    const std::int64_t passed = x.cols - columns(a);
    for (std::int64_t r = 0; r < x.rows; ++r) {
      std::copy(&dy(r, 0), &dy(r, 0) + passed, &dx(r, 0));
      std::fill(&dx(r, 0) + passed, &dx(r, 0) + x.cols, 0.0f);
    }
  }
};

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
  static constexpr LayerOp kForward{"embedding_forward", EmbeddingOps::check_forward, EmbeddingOps::forward};
  static constexpr LayerOp kBackward{"embedding_backward", EmbeddingOps::check_backward,
                                     EmbeddingOps::reference_backward, EmbeddingOps::fast_backward};
  static ConstView forward(const Embedding& embedding, const Slots& slots, const Pass& pass, ConstView input) {
    const View output{slots.output, pass.rows, slots.out};
    const ConstView in[] = {input, table(embedding, slots)};
    const float columns = static_cast<float>(index_columns(embedding, slots.in));
    pass.backend.layer_op(kForward, {in, {&output, 1}, {&columns, 1}});
    return output;
  }
  static bool backward(const Embedding& embedding, const Slots& slots, const Pass& pass, ConstView input, ConstView,
                       View dy, bool, std::optional<ConstView>, std::optional<View> dx) {
    const ConstView in[] = {dy, input};
    const View out[] = {{slots.gradients, embedding.input_dim, embedding.output_dim},
                        dx.value_or(View{nullptr, pass.rows, slots.in})};
    const float columns = static_cast<float>(index_columns(embedding, slots.in));
    pass.backend.layer_op(kBackward, {in, out, {&columns, 1}});
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
