// A table as it comes, with no column named but the target: the features' types inferred from
// their cells, missing cells filled with indicators, indicators left unscaled, the task inferred
// from the target, and a validation split drawn at random (per class for a classifier).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "cli_support.hpp"
#include "ember/ember.hpp"
#include "ember/preprocessing.hpp"
#include "ember/random.hpp"
#include "preprocessing_ops.hpp"

namespace ember {
namespace {

using testing::CliRun;
using testing::file_with;
using testing::run_ember;

const CompileOptions kCpu{.optimizer = Adam{}, .loss = MeanSquaredError{}, .device = Device::cpu};

/// id (unique text), city (3 categories, one gap), x (numbers, gaps), note (many texts repeated
/// twice), y = x + a city offset (one missing), on n rows.
std::string mixed_table(int n, int notes) {
  const char* cities[] = {"Paris", "Lyon", "Nice"};
  std::string text = "id,city,x,note,y\n";
  for (int i = 0; i < n; ++i) {
    const double x = (i % 11) * 0.2;
    const std::string city = i == 4 ? "" : cities[i % 3];
    const std::string y = i == 9 ? "NA" : fmt::format("{}", x + 3.0 * (i % 3));
    text += fmt::format("cust_{},{},{},word{},{}\n", i, city, i % 7 == 3 ? "NA" : fmt::format("{}", x), i % notes, y);
  }
  return text;
}

std::vector<std::string> fit_warnings(Sequential& model, const CsvTable& table, const ColumnSpec& spec,
                                      FitOptions options = {}) {
  std::vector<std::string> warnings;
  options.on_warning = [&](const std::string& message) { warnings.push_back(message); };
  model.fit(table, spec, options);
  return warnings;
}

bool any_contains(const std::vector<std::string>& messages, const std::string& fragment) {
  for (const std::string& message : messages)
    if (message.find(fragment) != std::string::npos) return true;
  return false;
}

TEST(TabularDefaults, TypesAreInferredFromTheCells) {
  // 300 rows, 250 different notes: the note column is free text, the id an identifier.
  const CsvTable table = parse_csv(mixed_table(300, 250), "mixed.csv");
  Sequential model{Dense(4), Dense(1)};
  model.compile(kCpu);
  TrainingSummary summary;
  FitOptions options{.epochs = 1, .on_train_begin = [&](const TrainingSummary& s) { summary = s; }};
  const std::vector<std::string> warnings = fit_warnings(model, table, {.targets = {"y"}}, options);
  EXPECT_TRUE(any_contains(warnings, "column 'id' holds a different text in every row")) << warnings.size();
  EXPECT_TRUE(any_contains(warnings, "column 'note' holds 250 different texts")) << warnings.size();
  const Preprocessing& p = model.preprocessing();
  EXPECT_EQ(p.missing, Missing::fill);
  EXPECT_EQ(p.input_names(),
            (std::vector<std::string>{"city=Lyon", "city=Nice", "city=Paris", "city (missing)", "x", "x (missing)"}));
  EXPECT_EQ(p.unit_inputs(), (std::vector<bool>{true, true, true, true, false, true}));
  EXPECT_EQ(summary.dropped_rows, 1);  // the row whose target is missing

  // Named columns override the inference.
  Sequential named{Dense(4), Dense(1)};
  named.compile(kCpu);
  fit_warnings(named, table, {.targets = {"y"}, .ignore = {"id"}, .one_hot = {"note"}}, {.epochs = 1});
  EXPECT_EQ(named.preprocessing().features.at(2).name, "note");
  EXPECT_EQ(named.preprocessing().features.at(2).categories.size(), 250u);
  Sequential numeric{Dense(4), Dense(1)};
  numeric.compile(kCpu);
  try {
    numeric.fit(table, {.targets = {"y"}, .numeric = {"city"}}, {.epochs = 1});
    ADD_FAILURE() << "a text column named numeric trained";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("mixed.csv:2:2 (column 'city'): 'Paris' is not a number"),
              std::string::npos)
        << error.what();
  }
  try {
    numeric.fit(table, {.targets = {"y"}, .one_hot = {"x"}, .numeric = {"x"}}, {.epochs = 1});
    ADD_FAILURE() << "a column named both one-hot and numeric trained";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("named by both ColumnSpec::one_hot and ColumnSpec::numeric"),
              std::string::npos)
        << error.what();
  }
}

TEST(TabularDefaults, MostlyNumericTextIsAnErrorAtTheStrayCell) {
  std::string text = "a,y\n";
  for (int i = 0; i < 30; ++i) text += fmt::format("{},{}\n", i == 17 ? "?" : std::to_string(i * 0.5), i);
  const CsvTable table = parse_csv(text, "stray.csv");
  Sequential model{Dense(1)};
  model.compile(kCpu);
  try {
    model.fit(table, {.targets = {"y"}}, {.epochs = 1});
    ADD_FAILURE() << "trained on a numeric column with a stray text cell";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("stray.csv:19:1 (column 'a'): '?' is not a number"), std::string::npos)
        << error.what();
  }
}

TEST(TabularDefaults, TextInMostCellsIsCategoriesWhateverItsOtherValues) {
  // "yes" in most rows, codes 2 to 6 in the others (more distinct numbers than texts): a category
  // column, not numbers with stray cells.
  std::string text = "status,y\n";
  for (int i = 0; i < 40; ++i) text += fmt::format("{},{}\n", i % 4 == 0 ? std::to_string(2 + i % 5) : "yes", i);
  const CsvTable table = parse_csv(text, "status.csv");
  Sequential model{Dense(1)};
  model.compile(kCpu);
  model.fit(table, {.targets = {"y"}}, {.epochs = 1});
  ASSERT_EQ(model.preprocessing().features.size(), 1u);
  const FeatureColumn& status = model.preprocessing().features[0];
  EXPECT_TRUE(status.one_hot);
  EXPECT_EQ(status.categories, (std::vector<std::string>{"2", "3", "4", "5", "6", "yes"}));
  EXPECT_EQ(model.input_width(), 6);
}

TEST(TabularDefaults, RawRowsWithGapsPredictAsTheEncodedInputs) {
  const CsvTable table = parse_csv(mixed_table(120, 40), "mixed.csv");
  Sequential model{Dense(8, Activation::tanh), Dense(1)};
  model.compile(kCpu);
  fit_warnings(model, table, {.targets = {"y"}, .ignore = {"id", "note"}}, {.epochs = 2});
  const Preprocessing& p = model.preprocessing();
  ASSERT_EQ(p.features.size(), 2u);
  const FeatureColumn& x = p.features[1];
  ASSERT_EQ(x.fill.size(), 1u);
  EXPECT_TRUE(x.missing_indicator);
  EXPECT_TRUE(p.features[0].fill.empty());  // a missing category sets its indicator alone
  // Every row of the table but the one without a target was a training row: the fill is the mean of
  // their float32 cells, summed in float64 in row order.
  double sum = 0, present = 0;
  for (int i = 0; i < 120; ++i)
    if (i % 7 != 3 && i != 9) {
      sum += static_cast<float>((i % 11) * 0.2);
      present += 1;
    }
  EXPECT_DOUBLE_EQ(x.fill[0], sum / present);
  // Indicators keep 0 and 1; x is standardized.
  const Scaler& scaler = model.scaler();
  const std::vector<bool> indicators = p.unit_inputs();
  for (std::size_t c = 0; c < indicators.size(); ++c) {
    EXPECT_EQ(scaler.x.mean[c] == 0.0 && scaler.x.std[c] == 1.0, indicators[c]) << p.input_names()[c];
  }

  // Raw rows: a gap in x, a gap in city, a city never seen.
  const CsvTable raw = parse_csv("city,x\nLyon,\n,0.4\nRome,1.2\nNice,0.6\n", "raw.csv");
  const Matrix predicted = model.predict(raw);
  const auto fill = static_cast<float>(x.fill[0]);
  const Matrix encoded{{1, 0, 0, 0, fill, 1},  // Lyon, x missing
                       {0, 0, 0, 1, 0.4f, 0},  // city missing
                       {0, 0, 0, 0, 1.2f, 0},  // Rome: no indicator
                       {0, 1, 0, 0, 0.6f, 0}};
  const Matrix expected = model.predict(encoded);
  for (std::int64_t r = 0; r < 4; ++r) EXPECT_FLOAT_EQ(predicted(r, 0), expected(r, 0)) << "row " << r;

  // The checkpoint keeps the policy, the fill and the indicators.
  const std::string path = testing::work_directory() + "/fill.safetensors";
  model.save(path);
  const Sequential loaded = testing::load_on_cpu(path);
  EXPECT_EQ(loaded.preprocessing(), p);
  const Matrix again = loaded.predict(raw);
  for (std::int64_t r = 0; r < 4; ++r) EXPECT_EQ(again(r, 0), predicted(r, 0)) << "row " << r;
}

TEST(TabularDefaults, BinsEncodeNumbersPiecewiseLinearly) {
  // a: 0.5 to 99.5 with 50.5 missing; c: constant; b: two values; g: ten whole numbers. y = a.
  std::string text = "a,c,b,g,y\n";
  for (int i = 0; i < 100; ++i)
    text += fmt::format("{},5,{},{},{}\n", i == 50 ? "" : std::to_string(i + 0.5), i % 2, i % 10, i);
  const CsvTable table = parse_csv(text, "bins.csv");
  Sequential model{Dense(8, Activation::tanh), Dense(1)};
  model.compile(kCpu);
  fit_warnings(model, table, {.targets = {"y"}, .bins = 4}, {.epochs = 2});
  const Preprocessing& p = model.preprocessing();
  EXPECT_EQ(p.bins, 4u);
  const FeatureColumn& a = p.features.at(0);
  // numpy.quantile of the 99 values 0.5..49.5, 51.5..99.5 at 0, 1/4, ..., 1: positions 0, 24.5,
  // 49, 73.5 and 98 among them.
  EXPECT_EQ(a.bin_edges, (std::vector<double>{0.5, 25, 49.5, 75, 99.5}));
  EXPECT_TRUE(p.features.at(1).bin_edges.empty());  // constant
  EXPECT_TRUE(p.features.at(2).bin_edges.empty());  // two values: a step already
  // Ten whole numbers, more than 4 bins hold: each value a step of its own.
  EXPECT_EQ(p.features.at(3).bin_edges, (std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  std::vector<std::string> names = {"a",           "a (bin 1)", "a (bin 2)", "a (bin 3)", "a (bin 4)",
                                    "a (missing)", "c",         "b",         "g"};
  for (int k = 1; k <= 9; ++k) names.push_back(fmt::format("g (bin {})", k));
  EXPECT_EQ(p.input_names(), names);
  std::vector<bool> unit = {false, true, true, true, true, true, false, false, false};
  unit.resize(18, true);
  EXPECT_EQ(p.unit_inputs(), unit);
  const Scaler& scaler = model.scaler();
  for (std::size_t c = 1; c <= 4; ++c) EXPECT_TRUE(scaler.x.mean[c] == 0.0 && scaler.x.std[c] == 1.0) << c;

  // Raw rows as the inputs the definition gives: inside a bin, a gap (the fill's bins), beyond the edges.
  const CsvTable raw = parse_csv("a,c,b,g\n30.5,5,1,3\n,5,0,0\n-5,5,1,9\n120,5,0,4.5\n", "raw.csv");
  const auto fill = static_cast<float>(a.fill.at(0));
  const float share = (30.5f - 25.0f) / 24.5f, fill_share = (fill - 49.5f) / 25.5f;
  const auto g_bins = [](float g) {
    std::vector<float> shares;
    for (int k = 0; k < 9; ++k) shares.push_back(std::clamp(g - static_cast<float>(k), 0.0f, 1.0f));
    return shares;
  };
  const auto row = [&](std::vector<float> front, float g) {
    front.push_back(g);
    for (const float s : g_bins(g)) front.push_back(s);
    return front;
  };
  const std::vector<std::vector<float>> rows = {
      row({30.5f, 1, share, 0, 0, 0, 5, 1}, 3), row({fill, 1, 1, fill_share, 0, 1, 5, 0}, 0),
      row({-5, 0, 0, 0, 0, 0, 5, 1}, 9), row({120, 1, 1, 1, 1, 0, 5, 0}, 4.5f)};
  Matrix encoded(4, 18);
  for (std::int64_t r = 0; r < 4; ++r)
    for (std::int64_t c = 0; c < 18; ++c)
      encoded(r, c) = rows[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)];
  const Matrix predicted = model.predict(raw), expected = model.predict(encoded);
  for (std::int64_t r = 0; r < 4; ++r) EXPECT_FLOAT_EQ(predicted(r, 0), expected(r, 0)) << "row " << r;

  // Whole numbers of more than 257 values are binned by their quantiles.
  std::string many = "n,y\n";
  for (int i = 0; i < 300; ++i) many += fmt::format("{},{}\n", i, i % 7);
  Sequential counts{Dense(1)};
  counts.compile(kCpu);
  fit_warnings(counts, parse_csv(many, "many.csv"), {.targets = {"y"}, .bins = 4}, {.epochs = 1});
  EXPECT_EQ(counts.preprocessing().features.at(0).bin_edges, (std::vector<double>{0, 74.75, 149.5, 224.25, 299}));

  // The checkpoint keeps the edges; a later fit must ask for the same bins.
  const std::string path = testing::work_directory() + "/bins.safetensors";
  model.save(path);
  Sequential loaded = testing::load_on_cpu(path);
  EXPECT_EQ(loaded.preprocessing(), p);
  EXPECT_EQ(loaded.predict(raw), predicted);
  try {
    loaded.fit(table, {.targets = {"y"}, .bins = 8}, {.epochs = 1});
    ADD_FAILURE() << "a fit with other bins went on";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("trained with ColumnSpec::bins 4, not 8"), std::string::npos)
        << error.what();
  }
  Sequential one{Dense(1)};
  one.compile(kCpu);
  try {
    one.fit(table, {.targets = {"y"}, .bins = 1}, {.epochs = 1});
    ADD_FAILURE() << "one bin was taken";
  } catch (const SettingError& error) {
    EXPECT_NE(std::string(error.what()).find("ColumnSpec::bins"), std::string::npos) << error.what();
  }
}

TEST(TabularDefaults, TheTaskComesFromTheTarget) {
  const CsvTable table = parse_csv(
      "a,label,flag,grade,price\n1,cat,0,1,2.5\n2,dog,1,2,3.5\n3,cat,1,3,1.25\n4,,0,2,7\n5,dog,1,1,2.5\n", "t.csv");
  const InferredTask text = infer_task(table, {"label"});
  EXPECT_TRUE(text.classification);
  EXPECT_EQ(text.reason, "target 'label' holds text labels");
  const InferredTask flag = infer_task(table, {"flag"});
  EXPECT_TRUE(flag.classification);
  EXPECT_EQ(flag.reason, "target 'flag' holds two values, 0 and 1");
  EXPECT_FALSE(infer_task(table, {"grade"}).classification);  // three whole numbers: left to regression
  EXPECT_FALSE(infer_task(table, {"price"}).classification);
  EXPECT_FALSE(infer_task(table, {"flag", "price"}).classification);
}

/// 80 rows sorted by class (40 "a", then 40 "b"); f is the class's index, g the row's.
CsvTable sorted_classes() {
  std::string text = "f,g,label\n";
  for (int i = 0; i < 80; ++i) text += fmt::format("{},{},{}\n", i < 40 ? 0 : 1, i, i < 40 ? "a" : "b");
  return parse_csv(text, "sorted.csv");
}

TEST(TabularDefaults, TheValidationRowsAreDrawnPerClass) {
  const CsvTable table = sorted_classes();
  // The scaler's mean of f is the share of "b" among the training rows: half when each class gives
  // a quarter of its rows, a third when the last quarter of the file (all "b") is held out.
  const auto share_of_b = [&](ValidationRows rows, std::uint64_t seed) {
    Sequential model({Dense(1)}, seed);
    model.compile({.optimizer = Adam{}, .loss = CrossEntropy{}, .device = Device::cpu});
    model.fit(table, {.targets = {"label"}}, {.epochs = 1, .validation_split = 0.25, .validation_rows = rows});
    return std::pair{model.scaler().x.mean[0], model.scaler().x.mean[1]};
  };
  const auto [random_b, random_g] = share_of_b(ValidationRows::random, 1);
  EXPECT_DOUBLE_EQ(random_b, 0.5);
  const auto [last_b, last_g] = share_of_b(ValidationRows::last, 1);
  EXPECT_DOUBLE_EQ(last_b, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(last_g, 29.5);  // rows 0..59
  // Drawn, not a fixed pattern: another seed holds out other rows of each class.
  const auto [other_b, other_g] = share_of_b(ValidationRows::random, 2);
  EXPECT_DOUBLE_EQ(other_b, 0.5);
  EXPECT_NE(other_g, random_g);
}

TEST(TabularDefaults, MatricesDrawTheirValidationRowsToo) {
  Matrix x(100, 1), y(100, 1);
  for (std::int64_t r = 0; r < 100; ++r) {
    x(r, 0) = static_cast<float>(r);
    y(r, 0) = static_cast<float>(2 * r);
  }
  const auto training_mean = [&](ValidationRows rows) {
    Sequential model{Dense(1)};
    model.compile(kCpu);
    TrainingSummary summary;
    model.fit(x, y,
              {.epochs = 1,
               .validation_split = 0.2,
               .validation_rows = rows,
               .on_train_begin = [&](const TrainingSummary& s) { summary = s; }});
    EXPECT_EQ(summary.training_rows, 80);
    EXPECT_EQ(summary.validation_rows, 20);
    return model.scaler().x.mean[0];
  };
  EXPECT_DOUBLE_EQ(training_mean(ValidationRows::last), 39.5);
  const double drawn = training_mean(ValidationRows::random);
  EXPECT_NE(drawn, 39.5);
  EXPECT_GT(drawn, 35.0);  // a draw over all rows, not another block
  EXPECT_LT(drawn, 64.0);
}

TEST(TabularDefaults, TheCommandLineTrainsOnATableAsItComes) {
  // Text features, an identifier, gaps and a text target: only --data and --target.
  std::string text = "id,colour,size,weight,kind\n";
  const char* colours[] = {"red", "green", "blue"};
  for (int i = 0; i < 150; ++i) {
    const int kind = i % 3;
    text += fmt::format("row{},{},{},{},{}\n", i, i % 13 == 0 ? "" : colours[kind], i % 11 == 0 ? "" : "1.5",
                        kind * 2.0 + (i % 5) * 0.1,
                        kind == 0   ? "apple"
                        : kind == 1 ? "pear"
                                    : "plum");
  }
  const std::string data = file_with("fruit.csv", text), model = testing::dir() + "/fruit.safetensors";
  const CliRun train = run_ember("train --device cpu --data " + data + " --target kind --save " + model);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  EXPECT_NE(train.err.find("note: target 'kind' holds text labels: training a classifier (--loss crossentropy)"),
            std::string::npos)
      << train.err;
  EXPECT_NE(train.err.find("column 'id' holds a different text in every row"), std::string::npos) << train.err;
  EXPECT_NE(train.err.find("to encode its values as categories, name it in --one-hot"), std::string::npos) << train.err;
  EXPECT_NE(train.out.find("target 'kind' with 3 classes"), std::string::npos) << train.out;
  const CliRun evaluate = run_ember("evaluate --device cpu --model " + model + " --data " + data);
  ASSERT_EQ(evaluate.exit_code, 0) << evaluate.err;
  EXPECT_NE(evaluate.out.find("accuracy: 1.000000"), std::string::npos) << evaluate.out;
  // inspect pairs each input's scaler figures with its column: colour's three categories and its
  // missing-value indicator, left at mean 0 and standard deviation 1.
  const CliRun inspect = run_ember("inspect " + model);
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_NE(inspect.out.find("colour: one-hot (3 categories: blue, green, red); mean 0 0 0 0, std 1 1 1 1; an input "
                             "for missing cells (the last)"),
            std::string::npos)
      << inspect.out;
  const std::string raw = file_with("raw.csv", "colour,size,weight\n,,4.1\nred,1.5,0.2\n");
  const CliRun predict = run_ember("predict --device cpu --model " + model + " --data " + raw);
  ASSERT_EQ(predict.exit_code, 0) << predict.err;
  EXPECT_NE(predict.out.find("plum"), std::string::npos) << predict.out;
  EXPECT_NE(predict.out.find("apple"), std::string::npos) << predict.out;
  // A regression can still be asked for, and is refused on text labels with the flag to use.
  const CliRun regression = run_ember("train --device cpu --epochs 1 --loss mse --data " + data + " --target kind");
  EXPECT_EQ(regression.exit_code, 2);
  EXPECT_NE(regression.err.find("use --loss crossentropy"), std::string::npos) << regression.err;
  // --val-last needs a split.
  const CliRun last = run_ember("train --device cpu --epochs 1 --val-last --data " + data + " --target kind");
  EXPECT_EQ(last.exit_code, 2);
  EXPECT_NE(last.err.find("--val-last goes with --val-split"), std::string::npos) << last.err;
}

// Without bins, ColumnSpec::steps gives whole numbers of kFewestSteps to kMaxBins + 1 values a step
// each, and leaves every other column to its value.
TEST(TabularDefaults, StepsTellCodesApartWithoutBins) {
  // code: 66 whole numbers; few: 65; part: 70 numbers with fractions; many: 300 whole numbers.
  std::string text = "code,few,part,many,y\n";
  for (int i = 0; i < 600; ++i) text += fmt::format("{},{},{},{},{}\n", i % 66, i % 65, (i % 70) + 0.5, i % 300, i % 7);
  const CsvTable table = parse_csv(text, "codes.csv");
  Sequential model{Dense(4, Activation::relu), Dense(1)};
  model.compile(kCpu);
  fit_warnings(model, table, {.targets = {"y"}, .steps = true}, {.epochs = 1});
  const Preprocessing& p = model.preprocessing();
  EXPECT_TRUE(p.steps);
  EXPECT_EQ(p.bins, 0u);
  std::vector<double> codes(66);
  std::iota(codes.begin(), codes.end(), 0.0);
  EXPECT_EQ(p.features.at(0).bin_edges, codes);
  for (std::size_t f = 1; f < 4; ++f) EXPECT_TRUE(p.features.at(f).bin_edges.empty()) << p.features.at(f).name;
  EXPECT_EQ(model.input_width(), 4 + 65);
  // A code between two steps and beyond the last: the shares the definition gives.
  const CsvTable raw = parse_csv("code,few,part,many\n2.5,1,1.5,1\n70,1,1.5,1\n", "raw.csv");
  Matrix encoded(2, 4 + 65);
  for (std::int64_t r = 0; r < 2; ++r) {
    const float code = r == 0 ? 2.5f : 70.0f;
    encoded(r, 0) = code;
    for (std::int64_t k = 0; k < 65; ++k) encoded(r, 1 + k) = std::clamp(code - static_cast<float>(k), 0.0f, 1.0f);
    encoded(r, 66) = 1;
    encoded(r, 67) = 1.5f;
    encoded(r, 68) = 1;
  }
  const Matrix predicted = model.predict(raw), expected = model.predict(encoded);
  for (std::int64_t r = 0; r < 2; ++r) EXPECT_FLOAT_EQ(predicted(r, 0), expected(r, 0)) << "row " << r;

  // Off by default in the library; the checkpoint keeps the choice and a later fit must keep it too.
  Sequential plain{Dense(1)};
  plain.compile(kCpu);
  fit_warnings(plain, table, {.targets = {"y"}}, {.epochs = 1});
  EXPECT_TRUE(plain.preprocessing().features.at(0).bin_edges.empty());
  const std::string path = testing::work_directory() + "/steps.safetensors";
  model.save(path);
  Sequential loaded = testing::load_on_cpu(path);
  EXPECT_EQ(loaded.preprocessing(), p);
  EXPECT_EQ(loaded.predict(raw), predicted);
  try {
    loaded.fit(table, {.targets = {"y"}}, {.epochs = 1});
    ADD_FAILURE() << "a fit without the steps went on";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("trained with ColumnSpec::steps true, not false"), std::string::npos)
        << error.what();
  }
}

TEST(TabularDefaults, LevelsGiveEachCodeAnIndicatorBesideItsSteps) {
  // code: 70 whole numbers, with a gap; part: 70 numbers with fractions (steps and levels for
  // neither); under bins 8 as under steps alone, the code gets a step and an indicator per value.
  std::string text = "code,part,y\n";
  for (int i = 0; i < 700; ++i)
    text += fmt::format("{},{},{}\n", i == 5 ? "NA" : fmt::format("{}", 100 + i % 70), (i % 70) + 0.5, i % 7);
  const CsvTable table = parse_csv(text, "codes.csv");
  for (const std::size_t bins : {std::size_t{0}, std::size_t{8}}) {
    Sequential model{Dense(4, Activation::relu), Dense(1)};
    model.compile(kCpu);
    fit_warnings(model, table, {.targets = {"y"}, .bins = bins, .steps = true, .levels = true}, {.epochs = 1});
    const Preprocessing& p = model.preprocessing();
    const FeatureColumn& code = p.features.at(0);
    EXPECT_TRUE(p.levels);
    ASSERT_EQ(code.bin_edges.size(), 70u) << bins;
    EXPECT_TRUE(code.levels);
    EXPECT_EQ(code.level_count(), 70u);
    EXPECT_FALSE(p.features.at(1).levels) << "numbers with fractions have no levels";
    EXPECT_TRUE(code.missing_indicator);
    // code: its value, 69 steps, 70 levels, the missing indicator; part: its value (and bins).
    EXPECT_EQ(model.input_width(), static_cast<std::int64_t>(1 + 69 + 70 + 1 + p.features.at(1).inputs()));
    const std::vector<std::string> names = p.input_names();
    EXPECT_EQ(names.at(70), "code=100");
    EXPECT_EQ(names.at(139), "code=169");
    EXPECT_EQ(names.at(140), "code (missing)");
    const std::vector<bool> unit = p.unit_inputs();
    EXPECT_TRUE(unit.at(70) && unit.at(139)) << "levels are indicators, left unscaled";

    // A raw code sets its own level and no other; one training never saw, none.
    const CsvTable raw = parse_csv("code,part\n103,1.5\n250,1.5\n", "raw.csv");
    const preprocessing::Encoded encoded = preprocessing::encode(p, raw, {0, 1}, false);
    for (std::int64_t k = 0; k < 70; ++k) {
      EXPECT_EQ(encoded.x(0, 70 + k), k == 3 ? 1.0f : 0.0f) << k;
      EXPECT_EQ(encoded.x(1, 70 + k), 0.0f) << k;
    }
    // The checkpoint keeps them: the same predictions from raw rows.
    const std::string path = testing::work_directory() + "/levels.safetensors";
    model.save(path);
    const Sequential loaded = testing::load_on_cpu(path);
    EXPECT_EQ(loaded.preprocessing(), p);
    EXPECT_EQ(loaded.predict(raw), model.predict(raw));
  }
  // Off unless asked in the library; on in the defaults the CLI and Python's estimators share.
  Sequential plain{Dense(1)};
  plain.compile(kCpu);
  fit_warnings(plain, table, {.targets = {"y"}, .steps = true}, {.epochs = 1});
  EXPECT_FALSE(plain.preprocessing().features.at(0).levels);
  EXPECT_TRUE(table_defaults(10).levels);
}

// The rule the CLI and Python's estimators share: nothing below 1000 rows, a held-out fifth with
// early stopping from 1000, bins as well from 5000.
TEST(TabularDefaults, TheDefaultsBySizeAreTheLibrarys) {
  for (const std::int64_t rows : {0, 999, 1000, 4999, 5000, 262144}) {
    const TableDefaults d = table_defaults(rows);
    EXPECT_EQ(d.validation_split, rows >= 1000 ? 0.2 : 0.0) << rows;
    EXPECT_EQ(d.patience, rows >= 1000 ? 20 : 0) << rows;
    EXPECT_EQ(d.bins, rows >= 5000 ? 64u : 0u) << rows;
    EXPECT_TRUE(d.steps) << rows;
    EXPECT_TRUE(d.levels) << rows;
    EXPECT_EQ(d.members, std::clamp<std::int64_t>(100'000 / std::max<std::int64_t>(rows, 1), 1, 5)) << rows;
    EXPECT_TRUE(bins_allowed(d.bins));
  }
}

TEST(TabularDefaults, LargerTablesHoldOutRowsAndStopEarlyByDefault) {
  const auto table = [](int rows) {
    std::string text = "x,y\n";
    for (int i = 0; i < rows; ++i) text += fmt::format("{},{}\n", (i % 37) * 0.1, (i % 37) * 0.2 + (i % 3) * 0.01);
    return file_with(fmt::format("rows{}.csv", rows), text);
  };
  const std::string large = table(1000), small = table(999);
  const CliRun held = run_ember("train --device cpu --epochs 300 --data " + large + " --target y");
  ASSERT_EQ(held.exit_code, 0) << held.err;
  EXPECT_NE(held.err.find("note: holding out 20% of the 1000 rows for validation (other rows for each network) and "
                          "stopping after 20 epochs"),
            std::string::npos)
      << held.err;
  EXPECT_NE(held.out.find("800 training rows, 200 held out for validation"), std::string::npos) << held.out;
  EXPECT_NE(held.out.find("val_loss"), std::string::npos) << held.out;
  // Then a linear model on the same rows, kept where it validates better; y is nearly linear in x.
  EXPECT_NE(held.err.find("note: a linear model of the same inputs then trains on the same rows"), std::string::npos)
      << held.err;
  EXPECT_NE(held.out.find("Linear model, to compare: member 5 of 5"), std::string::npos) << held.out;
  EXPECT_NE(held.out.find("with a linear model; the model is the "), std::string::npos) << held.out;
  const CliRun given = run_ember("train --device cpu --epochs 3 --layers 8 --data " + large + " --target y");
  ASSERT_EQ(given.exit_code, 0) << given.err;
  EXPECT_EQ(given.out.find("Linear model"), std::string::npos) << given.out;
  const CliRun every = run_ember("train --device cpu --epochs 2 --val-split 0 --data " + large + " --target y");
  ASSERT_EQ(every.exit_code, 0) << every.err;
  EXPECT_EQ(every.err.find("holding out"), std::string::npos) << every.err;
  EXPECT_NE(every.out.find("1000 training rows;"), std::string::npos) << every.out;
  const CliRun fewer = run_ember("train --device cpu --epochs 2 --data " + small + " --target y");
  ASSERT_EQ(fewer.exit_code, 0) << fewer.err;
  EXPECT_NE(fewer.out.find("999 training rows;"), std::string::npos) << fewer.out;
  // The early-stopping settings need early stopping: by default, or given.
  const CliRun delta = run_ember("train --device cpu --epochs 2 --min-delta 0.1 --data " + small + " --target y");
  EXPECT_EQ(delta.exit_code, 2);
  EXPECT_NE(delta.err.find("early stopping is on by default only for tables of 1000 rows or more"), std::string::npos)
      << delta.err;
  EXPECT_EQ(run_ember("train --device cpu --epochs 2 --min-delta 0.1 --data " + large + " --target y").exit_code, 0);
}

TEST(TabularDefaults, LargerTablesTrainWithMomentumAndClippingByDefault) {
  const auto table = [](int rows) {
    std::string text = "x,y\n";
    for (int i = 0; i < rows; ++i) text += fmt::format("{},{}\n", (i % 37) * 0.1, ((i % 37) % 5) * 0.2);
    return file_with(fmt::format("momentum{}.csv", rows), text);
  };
  const std::string large = table(1000), small = table(999), saved = large + ".safetensors";
  // --layers: no linear model to compare, whose optimizer is plain SGD.
  const auto trained = [&](const std::string& flags, const std::string& data) {
    const CliRun run = run_ember("train --device cpu --epochs 2 --layers 8 --members 1 --save " + saved + " --data " +
                                 data + " --target y " + flags);
    EXPECT_EQ(run.exit_code, 0) << flags << ": " << run.err;
    const Sequential model = testing::load_on_cpu(saved);
    return std::pair{run, model.compile_options()};
  };
  const auto [held, options] = trained("", large);
  EXPECT_NE(held.err.find("note: SGD takes momentum 0.9 and the gradients are clipped to norm 5, as for every table "
                          "of 1000 rows or more"),
            std::string::npos)
      << held.err;
  EXPECT_EQ(options.optimizer, Optimizer{SGD{.momentum = static_cast<float>(TableDefaults::kMomentum)}});
  EXPECT_EQ(options.clip_norm, TableDefaults::kClipNorm);
  const auto [fewer, plain] = trained("", small);
  EXPECT_EQ(fewer.err.find("momentum"), std::string::npos) << fewer.err;
  EXPECT_EQ(plain.optimizer, Optimizer{SGD{}});
  EXPECT_EQ(plain.clip_norm, 0.0f);
  // A flag given wins over its default, and the other default stays, noted alone.
  const auto [slower, half] = trained("--momentum 0.5", large);
  EXPECT_EQ(slower.err.find("momentum 0.9"), std::string::npos) << slower.err;
  EXPECT_NE(slower.err.find("note: the gradients are clipped to norm 5, as for every table of 1000 rows or more; "
                            "--clip-norm 0 turns it off"),
            std::string::npos)
      << slower.err;
  EXPECT_EQ(half.optimizer, Optimizer{SGD{.momentum = 0.5f}});
  EXPECT_EQ(half.clip_norm, TableDefaults::kClipNorm);
  const auto [unclipped, free] = trained("--clip-norm 0", large);
  EXPECT_NE(unclipped.err.find("note: SGD takes momentum 0.9, as for every table of 1000 rows or more; --momentum 0 "
                               "turns it off"),
            std::string::npos)
      << unclipped.err;
  EXPECT_EQ(free.clip_norm, 0.0f);
  EXPECT_EQ(free.optimizer, Optimizer{SGD{.momentum = static_cast<float>(TableDefaults::kMomentum)}});
  const auto [adam_run, adam] = trained("--optimizer adam", large);
  EXPECT_EQ(adam_run.err.find("momentum"), std::string::npos) << adam_run.err;
  EXPECT_NE(adam_run.err.find("note: the gradients are clipped to norm 5"), std::string::npos) << adam_run.err;
  EXPECT_EQ(adam.optimizer, Optimizer{Adam{}});
  EXPECT_EQ(adam.clip_norm, TableDefaults::kClipNorm);
  // A model that goes on keeps its own settings, whatever the size of the table it goes on with.
  trained("", small);
  const CliRun resumed = run_ember("train --device cpu --epochs 4 --init " + saved + " --save " + saved + " --data " +
                                   large + " --target y");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const Sequential went_on = testing::load_on_cpu(saved);
  EXPECT_EQ(went_on.compile_options().optimizer, Optimizer{SGD{}});
  EXPECT_EQ(went_on.compile_options().clip_norm, 0.0f);
}

TEST(TabularDefaults, NumbersOfLargerTablesGetBinsByDefault) {
  const auto table = [](int rows) {
    std::string text = "x,flag,y\n";
    for (int i = 0; i < rows; ++i) text += fmt::format("{},{},{}\n", i * 0.01, i % 2, (i % 97) * 0.2);
    return file_with(fmt::format("binned{}.csv", rows), text);
  };
  const std::string large = table(5000), small = table(4999);
  // x (every value different): its value and 64 bins; flag (two values): no bins.
  const CliRun binned = run_ember("train --device cpu --epochs 1 --data " + large + " --target y");
  ASSERT_EQ(binned.exit_code, 0) << binned.err;
  EXPECT_NE(binned.err.find("note: each numeric column also gets up to 64 bins between its quantiles (whole numbers "
                            "of up to 257 values: one between each two values), as for every table of 5000 rows or "
                            "more; --bins 0 leaves them out"),
            std::string::npos)
      << binned.err;
  EXPECT_NE(binned.out.find("2 features (66 inputs)"), std::string::npos) << binned.out;
  // Below the bins' row count, a column of whole-number codes still gets its steps, with a note.
  std::string coded = "code,y\n";
  for (int i = 0; i < 1000; ++i) coded += fmt::format("{},{}\n", i % 80, (i % 80) % 3);
  const std::string codes = file_with("codes.csv", coded);
  const CliRun stepped = run_ember("train --device cpu --epochs 1 --data " + codes + " --target y");
  ASSERT_EQ(stepped.exit_code, 0) << stepped.err;
  EXPECT_NE(stepped.err.find("note: column 'code' holds 80 whole numbers, read as codes: a bin between each two and "
                             "an indicator for each, that the network can tell each apart; --bins 0 leaves them out"),
            std::string::npos)
      << stepped.err;
  EXPECT_NE(stepped.out.find("1 feature (160 inputs)"), std::string::npos) << stepped.out;  // 1 + 79 + 80
  const CliRun unstepped = run_ember("train --device cpu --epochs 1 --bins 0 --data " + codes + " --target y");
  ASSERT_EQ(unstepped.exit_code, 0) << unstepped.err;
  EXPECT_EQ(unstepped.err.find("read as codes"), std::string::npos) << unstepped.err;
  EXPECT_NE(unstepped.out.find("1 feature, 1 target"), std::string::npos) << unstepped.out;
  for (const std::string& run : {"--data " + small, "--bins 0 --data " + large}) {
    const CliRun plain = run_ember("train --device cpu --epochs 1 --target y " + run);
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    EXPECT_EQ(plain.err.find("bins"), std::string::npos) << run << ": " << plain.err;
    EXPECT_NE(plain.out.find("2 features, 1 target"), std::string::npos) << run << ": " << plain.out;
  }
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// `ember train --data FILE --target y` with no other flag but the seed (and the epochs, for time)
// is these library calls: the task from infer_task, the sizes from table_defaults, the constants of
// TableDefaults, the library's own defaults for the rest. The same weights, bit for bit, at the
// three sizes the defaults tell apart, for regression and classification.
TEST(TabularDefaults, TheClisDefaultModelIsTheseLibraryCalls) {
  for (const int rows : {600, 1200, 6000})
    for (const bool classes : {false, true}) {
      std::string text = "city,area,rooms,y\n";
      const char* cities[] = {"north", "south", "east", ""};
      for (int i = 0; i < rows; ++i) {
        const double area = 40.0 + (i * 37 % 101), value = area / 40 + i % 6 + (i % 4 == 0) + (i * 13 % 7) * 0.3;
        text += fmt::format("{},{},{},{}\n", cities[i % 4], i % 19 == 0 ? "" : fmt::format("{}", area), 1 + i % 6,
                            classes ? (value > 5 ? "high" : "low") : fmt::format("{}", value));
      }
      const std::string path = file_with(fmt::format("defaults{}{}.csv", rows, classes ? "c" : "r"), text);
      const std::string saved = path + ".safetensors";
      const CliRun cli =
          run_ember("train --device cpu --quiet --epochs 3 --seed 7 --data " + path + " --target y --save " + saved);
      ASSERT_EQ(cli.exit_code, 0) << cli.err;

      const std::vector<std::string> targets{"y"};
      const bool classification = infer_task(read_csv(path), targets).classification;
      ASSERT_EQ(classification, classes);
      const TableDefaults defaults = table_defaults(rows);
      const ColumnSpec columns{
          .targets = targets, .bins = defaults.bins, .steps = defaults.steps, .levels = defaults.levels};
      const CsvTable table = read_csv(path, reading_options(columns, classification));
      const std::int64_t outputs =
          classification ? outputs_for_classes(static_cast<std::int64_t>(class_labels(table, columns).size())) : 1;
      Sequential model({Dense(TableDefaults::kHiddenWidth, Activation::relu),
                        Dense(TableDefaults::kHiddenWidth, Activation::relu), Dense(outputs)},
                       7);
      model.compile({.optimizer = SGD{.momentum = static_cast<float>(defaults.momentum)},
                     .loss = classification ? Loss{CrossEntropy{}} : Loss{MeanSquaredError{}},
                     .clip_norm = defaults.clip_norm,
                     .device = Device::cpu});
      FitOptions fit{.epochs = 3,
                     .batch_size = TableDefaults::kBatchSize,
                     .validation_split = defaults.validation_split,
                     .members = defaults.members,
                     .compare_linear = true};
      if (defaults.patience > 0) fit.early_stopping = EarlyStopping{.patience = defaults.patience};
      model.fit(table, columns, fit);
      const Sequential loaded = testing::load_on_cpu(saved);
      EXPECT_EQ(model.parameters(), loaded.parameters()) << rows << (classes ? " classes" : "");
      ASSERT_EQ(model.member_count(), loaded.member_count());
      for (std::int64_t k = 1; k < model.member_count(); ++k) {
        const ConstView mine = model.member_tensor(k, 0, "weight"), theirs = loaded.member_tensor(k, 0, "weight");
        EXPECT_TRUE(std::equal(mine.data, mine.data + mine.size(), theirs.data)) << rows << ", member " << k;
      }
      EXPECT_EQ(model.predict(table), loaded.predict(table)) << rows << (classes ? " classes" : "");
    }
}

TEST(TabularDefaults, ABlendKeepsTrainingItsLinearModelWithTheLayers) {
  // A nearly linear target under noise: the layers and the linear model validate alike, and a
  // blend of the two better still.
  std::string text = "a,b,city,y\n";
  Random random(1);
  for (int i = 0; i < 1200; ++i) {
    const double a = random.normal(), b = random.normal();
    const auto city = random.below(3);
    const double y = 0.6 * a + 0.4 * b + 0.1 * std::tanh(2.0 * a * b) + (city == 0 ? 0.2 : 0.0) + random.normal();
    text += fmt::format("{:.3f},{},{},{:.3f}\n", a, i % 17 == 3 ? "" : fmt::format("{:.3f}", b), "xyz"[city], y);
  }
  const std::string data = file_with("blend.csv", text), saved = data + ".safetensors";
  const CliRun first = run_ember("train --device cpu --data " + data + " --target y --save " + saved);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_NE(first.out.find("% linear; the model is the blend"), std::string::npos) << first.out;
  const Sequential blend = testing::load_on_cpu(saved);
  ASSERT_GT(blend.linear_share(), 0.0);
  // Trained on with --init: the layers' networks, then the linear model's, each counting its own
  // epochs up to five more.
  const std::int64_t layers_epochs = blend.epochs_completed(),
                     linear_epochs = blend.blended_linear().epochs_completed();
  const CliRun more =
      run_ember(fmt::format("train --device cpu --progress lines --init {} --save {} --data {} --target "
                            "y --epochs {}",
                            saved, saved, data, layers_epochs + 5));
  ASSERT_EQ(more.exit_code, 0) << more.err;
  EXPECT_NE(more.out.find("The blend's linear model: member 5 of 5"), std::string::npos) << more.out;
  EXPECT_NE(more.out.find(fmt::format("Epoch {}/{}", linear_epochs + 1, linear_epochs + 5)), std::string::npos)
      << more.out;
  const Sequential went_on = testing::load_on_cpu(saved);
  EXPECT_EQ(went_on.linear_share(), blend.linear_share());
  EXPECT_GT(went_on.blended_linear().epochs_completed(), linear_epochs);
  EXPECT_LE(went_on.blended_linear().epochs_completed(), linear_epochs + 5);
  const CliRun shown = run_ember("inspect " + saved);
  EXPECT_NE(shown.out.find(fmt::format("Blend: the predictions are {:g} times these layers' plus {:g} times a linear "
                                       "model's",
                                       1.0 - blend.linear_share(), blend.linear_share())),
            std::string::npos)
      << shown.out;
}

}  // namespace
}  // namespace ember
