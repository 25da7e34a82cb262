// Training on tables through the library: ignored, one-hot and missing cells, the preprocessing
// learned from the training rows and kept in checkpoints, the per-epoch figures, per-target metrics.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "ember/backend.hpp"
#include "ember/bench.hpp"
#include "ember/demo.hpp"
#include "ember/ember.hpp"
#include "ember/preprocessing.hpp"
#include "ember/random.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

const CompileOptions kCpu{
    .optimizer = SGD{.lr = 0.05f, .momentum = 0.9f}, .loss = MeanSquaredError{}, .device = Device::cpu};

/// id (text), city (3 categories), x (with gaps), y = x + a city offset, on n rows.
std::string city_table(int n) {
  const char* cities[] = {"Paris", "Lyon", "Nice"};
  std::string text = "id,city,x,y\n";
  for (int i = 0; i < n; ++i) {
    const double x = (i % 11) * 0.2;
    const double y = x + 3.0 * (i % 3);
    const bool gap = i % 7 == 3;
    text += fmt::format("cust_{},{},{},{}\n", i, cities[i % 3], gap ? "NA" : fmt::format("{}", x), y);
  }
  return text;
}

TEST(Tables, IgnoreOneHotAndMeanFillLearnFromTheTrainingRows) {
  const CsvTable table = parse_csv(city_table(60), "cities.csv");
  Sequential model{Dense(8, Activation::relu), Dense(1)};
  model.compile(kCpu);
  const ColumnSpec spec{.targets = {"y"}, .ignore = {"id"}, .one_hot = {"city"}, .missing = Missing::mean};
  TrainingSummary summary;
  model.fit(table, spec,
            {.epochs = 3,
             .validation_split = 0.25,
             .validation_rows = ValidationRows::last,
             .on_train_begin = [&](const TrainingSummary& s) { summary = s; }});
  EXPECT_EQ(summary.training_rows, 45);
  EXPECT_EQ(summary.validation_rows, 15);
  EXPECT_EQ(summary.inputs, 4);  // three indicators and x

  const Preprocessing& p = model.preprocessing();
  ASSERT_EQ(p.features.size(), 2u);
  EXPECT_EQ(p.features[0].name, "city");
  EXPECT_EQ(p.features[0].categories, (std::vector<std::string>{"Lyon", "Nice", "Paris"}));
  EXPECT_EQ(p.input_names(), (std::vector<std::string>{"city=Lyon", "city=Nice", "city=Paris", "x"}));
  // The fill values come from the 45 training rows only: each city's frequency, the mean of x.
  double sum = 0, present = 0;
  for (int i = 0; i < 45; ++i)
    if (i % 7 != 3) {
      sum += (i % 11) * 0.2;
      present += 1;
    }
  ASSERT_EQ(p.features[1].fill.size(), 1u);
  EXPECT_NEAR(p.features[1].fill[0], sum / present, 1e-6);
  EXPECT_NEAR(p.features[0].fill[2], 15.0 / 45.0, 1e-12);  // Paris: rows 0, 3, ..., 42
  EXPECT_EQ(p.spec().one_hot, std::vector<std::string>{"city"});
}

TEST(Tables, PredictOnRawRowsMatchesTheEncodedMatrix) {
  const CsvTable table = parse_csv(city_table(60), "cities.csv");
  Sequential model{Dense(8, Activation::relu), Dense(1)};
  model.compile(kCpu);
  model.fit(table, {.targets = {"y"}, .ignore = {"id"}, .one_hot = {"city"}, .missing = Missing::mean}, {.epochs = 5});
  // Berlin was never seen: all-zero indicators and one warning with the count. The gap takes x's mean.
  const CsvTable rows = parse_csv("x,city,extra\n0.4,Lyon,zzz\n,Paris,\n1,Berlin,q\n1,Berlin,r\n", "new.csv",
                                  model.preprocessing().csv_options());
  EXPECT_EQ(rows.column("extra").type, ColumnType::skipped);
  std::vector<std::string> warnings;
  const Matrix predicted = model.predict(rows, {.on_warning = [&](const std::string& w) { warnings.push_back(w); }});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0],
            "column 'city': 2 rows hold a category that training never saw (Berlin); their indicators are all zero");
  const float mean = static_cast<float>(model.preprocessing().features[1].fill[0]);
  const Matrix encoded{{1, 0, 0, 0.4f}, {0, 0, 1, mean}, {0, 0, 0, 1}, {0, 0, 0, 1}};
  EXPECT_EQ(predicted, model.predict(encoded));

  // Through a checkpoint: the same preprocessing, the same answers.
  const std::string path = testing::work_path("cities.safetensors");
  model.save(path);
  Sequential loaded = Sequential::load(path);
  loaded.compile(kCpu);
  EXPECT_EQ(loaded.preprocessing(), model.preprocessing());
  EXPECT_EQ(loaded.predict(rows, {.on_warning = [](const std::string&) {}}), predicted);
}

// ColumnSpec::embed: each embedded column one index input, after the other features, into its own
// range of the first layer's table (its categories, then one row for missing and unseen ones); the
// layer sized by the first fit; predict on raw rows and a checkpoint give the same indices.
TEST(Tables, EmbeddedColumnsGiveIndicesLastThatSizeTheFirstLayer) {
  std::string text = "id,city,x,band,y\n";
  const char* cities[] = {"Paris", "Lyon", "Nice"};
  for (int i = 0; i < 90; ++i)
    text += fmt::format("c{},{},{},{},{}\n", i, cities[i % 3], i % 7 == 3 ? "NA" : fmt::format("{}", (i % 11) * 0.2),
                        i % 5 == 2 ? "" : std::string(1, static_cast<char>('a' + i % 4)), (i % 11) * 0.2 + 3 * (i % 3));
  const CsvTable table = parse_csv(text, "cities.csv");
  Sequential model{Embedding(Embedding::kFromTable, 3), Dense(8, Activation::relu), Dense(1)};
  model.compile(kCpu);
  model.fit(table, {.targets = {"y"}, .ignore = {"id"}, .embed = {"city", "band"}}, {.epochs = 3});
  const Preprocessing& p = model.preprocessing();
  ASSERT_EQ(p.features.size(), 3u);
  EXPECT_EQ(p.features[0].name, "x");
  EXPECT_EQ(p.features[1].name, "city");
  EXPECT_EQ(p.features[2].name, "band");
  EXPECT_TRUE(p.features[1].embedded && p.features[2].embedded && !p.features[0].embedded);
  EXPECT_EQ(p.features[1].categories, (std::vector<std::string>{"Lyon", "Nice", "Paris"}));
  EXPECT_EQ(p.features[2].categories, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_FALSE(p.features[2].missing_indicator);  // a missing band takes its column's last row
  EXPECT_EQ(p.input_names(),
            (std::vector<std::string>{"x", "x (missing)", "city (category index)", "band (category index)"}));
  EXPECT_EQ(p.embedding_offsets(), (std::vector<std::int64_t>{0, 0, 4}));
  EXPECT_EQ(p.embedding_categories(), 4 + 5);
  EXPECT_EQ(model.layers().front(), Layer(Embedding(9, 3, 2)));
  EXPECT_EQ(p.spec().embed, (std::vector<std::string>{"city", "band"}));
  EXPECT_TRUE(p.spec().one_hot.empty());
  EXPECT_EQ(model.scaler().x.mean[2], 0.0);  // indices unscaled
  EXPECT_EQ(model.scaler().x.std[3], 1.0);

  const CsvTable rows =
      parse_csv("x,city,band\n0.4,Lyon,b\n0.4,Paris,b\n0.4,Berlin,\n0.4,,z\n", "new.csv", p.csv_options());
  std::vector<std::string> warnings;
  const Matrix predicted = model.predict(rows, {.on_warning = [&](const std::string& w) { warnings.push_back(w); }});
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0],
            "column 'city': 1 row holds a category that training never saw (Berlin); it takes the column's vector "
            "for missing and unseen categories");
  const Matrix encoded{{0.4f, 0, 0, 5}, {0.4f, 0, 2, 5}, {0.4f, 0, 3, 8}, {0.4f, 0, 3, 8}};
  EXPECT_EQ(predicted, model.predict(encoded));
  EXPECT_EQ(predicted(2, 0), predicted(3, 0));
  EXPECT_NE(predicted(0, 0), predicted(1, 0));

  const std::string path = testing::work_path("embedded_cities.safetensors");
  model.save(path);
  Sequential loaded = Sequential::load(path);
  loaded.compile(kCpu);
  EXPECT_EQ(loaded.preprocessing(), p);
  EXPECT_EQ(loaded.layers(), model.layers());
  EXPECT_EQ(loaded.predict(rows, {.on_warning = [](const std::string&) {}}), predicted);
  // A later fit asks for the same columns embedded.
  try {
    model.fit(table, {.targets = {"y"}, .ignore = {"id"}, .embed = {"city"}}, {.epochs = 1});
    ADD_FAILURE() << "another embed was taken";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("the model embeds band, city, not city"), std::string::npos) << e.what();
  }
  const auto error = [&](const std::vector<Layer>& layers, const ColumnSpec& spec) {
    Sequential other(layers);
    other.compile(kCpu);
    try {
      other.fit(table, spec, {.epochs = 1});
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error({Dense(8), Dense(1)}, {.targets = {"y"}, .ignore = {"id"}, .embed = {"city"}}),
            "the table's 1 embedded column (ColumnSpec::embed) needs a first layer that embeds it, Embedding(0, DIM), "
            "not Dense(8, linear)");
  EXPECT_EQ(error({Embedding(0, 3), Dense(1)}, {.targets = {"y"}, .ignore = {"id"}}),
            "Embedding(0, 3) is sized by the columns ColumnSpec::embed names, and it names none; name the categorical "
            "columns to embed");
  EXPECT_EQ(error({Embedding(5, 3, 2), Dense(1)}, {.targets = {"y"}, .ignore = {"id"}, .embed = {"city", "band"}}),
            "the table's 2 embedded columns need an Embedding of 2 index columns and 9 categories or more, not "
            "Embedding(5, 3, columns=2); use Embedding(0, 3), sized by fit");
  EXPECT_EQ(
      error({Embedding(0, 3), Dense(1)}, {.targets = {"y"}, .ignore = {"id"}, .one_hot = {"city"}, .embed = {"city"}}),
      "column 'city' is named by both ColumnSpec::one_hot and ColumnSpec::embed; pick one");
}

TEST(Tables, DropLeavesRowsOutAndPredictsNaNForThem) {
  const CsvTable table = parse_csv(city_table(70), "cities.csv");
  Sequential model{Dense(1)};
  model.compile(kCpu);
  TrainingSummary summary;
  model.fit(table, {.targets = {"y"}, .ignore = {"id"}, .one_hot = {"city"}, .missing = Missing::drop},
            {.epochs = 1, .on_train_begin = [&](const TrainingSummary& s) { summary = s; }});
  EXPECT_EQ(summary.dropped_rows, 10);  // rows 3, 10, ..., 66
  EXPECT_EQ(summary.training_rows, 60);
  EXPECT_TRUE(model.preprocessing().features[1].fill.empty());
  std::vector<std::string> warnings;
  const Matrix predicted = model.predict(parse_csv("city,x\nLyon,1\nNice,\n", "p.csv"),
                                         {.on_warning = [&](const std::string& w) { warnings.push_back(w); }});
  EXPECT_FALSE(std::isnan(predicted(0, 0)));
  EXPECT_TRUE(std::isnan(predicted(1, 0)));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "1 row with a missing feature has no prediction (NaN)");
  const Metrics metrics = model.evaluate(table, {});
  EXPECT_EQ(metrics.rows, 60);
  EXPECT_EQ(metrics.dropped_rows, 10);
}

TEST(Tables, RefusedSpecsNameTheColumn) {
  const CsvTable table = parse_csv(city_table(30), "cities.csv");
  Sequential model{Dense(1)};
  model.compile(kCpu);
  const auto error = [&](const ColumnSpec& spec) {
    try {
      model.fit(table, spec, {.epochs = 1});
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error({.targets = {"y"}, .one_hot = {"city"}, .numeric = {"id"}, .missing = Missing::mean}),
            "cities.csv:2:1 (column 'id'): 'cust_0' is not a number; if the column holds ids or text, leave it out "
            "with ColumnSpec::ignore id or encode its values as categories with ColumnSpec::one_hot id");
  EXPECT_EQ(error({.targets = {"y"}, .ignore = {"id", "city"}, .missing = Missing::error}).substr(0, 36),
            "cities.csv:5:3 (column 'x'): missing");
  EXPECT_EQ(error({.targets = {"y"}, .ignore = {"idd"}}).substr(0, 36), "cities.csv: no column named 'idd'; t");
  EXPECT_EQ(error({.targets = {"y"}, .ignore = {"y"}}),
            "ColumnSpec::ignore y: 'y' is a target column; a target cannot be a feature or be ignored");
  EXPECT_EQ(error({.targets = {"y"}, .ignore = {"city"}, .one_hot = {"city"}}),
            "column 'city' is named by both ColumnSpec::ignore and ColumnSpec::one_hot; pick one");
  EXPECT_EQ(error({.targets = {"id", "x"}, .numeric = {"id", "x"}}),
            "ColumnSpec::numeric id: 'id' is a target column; a target cannot be a feature or be ignored");
  EXPECT_EQ(error({.targets = {"city"}, .ignore = {"id"}}),
            "cities.csv:2:2 (column 'city'): 'Paris' is not a number; a regression target must be numeric; to train a "
            "classifier on its labels, use the loss CrossEntropy");
  EXPECT_FALSE(model.built());  // nothing was learned from a refused spec
  EXPECT_TRUE(model.preprocessing().empty());

  // Once learned, the preprocessing is kept: a later fit must ask for the same.
  const ColumnSpec spec{.targets = {"y"}, .ignore = {"id"}, .one_hot = {"city"}, .missing = Missing::mean};
  model.fit(table, spec, {.epochs = 1});
  EXPECT_EQ(error({.targets = {"y"}, .ignore = {"id"}, .missing = Missing::mean}),
            "the model one-hot encodes city, not none; its categories were fixed by its first training");
  EXPECT_EQ(error({.targets = {"y"}, .ignore = {"id"}, .one_hot = {"city"}}),
            "the model was trained with ColumnSpec::missing mean, not fill");
  EXPECT_EQ(error({.targets = {"x"}, .ignore = {"id"}, .one_hot = {"city"}, .missing = Missing::mean}),
            "the model was trained for the target columns y, not x");
  EXPECT_NO_THROW(model.fit(table, spec, {.epochs = 1}));
  EXPECT_EQ(model.epochs_completed(), 2);
}

TEST(Tables, NumericLookingCategoriesSortByValue) {
  std::string text = "grade,y\n";
  for (int i = 0; i < 30; ++i) text += fmt::format("{},{}\n", (i % 3) == 0 ? "10" : (i % 3 == 1 ? "9" : "2"), i % 3);
  const CsvTable table = parse_csv(text, "g.csv", {.text_columns = {"grade"}});
  Sequential model{Dense(1)};
  model.compile(kCpu);
  model.fit(table, {.targets = {"y"}, .one_hot = {"grade"}}, {.epochs = 1, .on_warning = [](const std::string&) {}});
  EXPECT_EQ(model.preprocessing().features[0].categories, (std::vector<std::string>{"2", "9", "10"}));
  // A table read without text_columns gives the same categories.
  EXPECT_EQ(model.predict(parse_csv("grade\n9\n", "p.csv")),
            model.predict(parse_csv("grade\n9\n", "p.csv", {.text_columns = {"grade"}})));
}

TEST(Tables, EpochFiguresMatchEvaluate) {
  // Validation runs after the epoch's updates: its figures are evaluate's on the held-out rows.
  // The training figures are measured before each batch's update: with one batch per epoch they
  // are evaluate's on the training rows before the epoch.
  Matrix x(64, 2), y(64, 2);
  Random random(5);
  for (std::int64_t r = 0; r < 64; ++r) {
    x(r, 0) = static_cast<float>(random.uniform());
    x(r, 1) = static_cast<float>(random.uniform());
    y(r, 0) = 3 * x(r, 0) - x(r, 1) + 0.1f * static_cast<float>(random.normal());
    y(r, 1) = 100 + 50 * x(r, 1);
  }
  std::vector<std::int64_t> train(48), held(16);
  std::iota(train.begin(), train.end(), 0);
  std::iota(held.begin(), held.end(), 48);
  Sequential model{Dense(4, Activation::relu), Dense(2)};
  model.compile(kCpu);
  model.set_column_names({"a", "b"}, {"first", "second"});
  const FitOptions last{.epochs = 0, .validation_split = 0.25, .validation_rows = ValidationRows::last};
  model.fit(x, y, last);  // builds and fixes the scaler
  const Metrics before = model.evaluate(x.take_rows(train), y.take_rows(train));
  FitOptions one_epoch = last;
  one_epoch.epochs = 1;
  one_epoch.batch_size = 48;
  const History history = model.fit(x, y, one_epoch);
  const EpochRecord& record = history.epochs.at(0);
  EXPECT_NEAR(*record.r2, before.r2, 1e-5);
  EXPECT_NEAR(*record.mae, before.mae, 1e-5 * before.mae);
  const Metrics after = model.evaluate(x.take_rows(held), y.take_rows(held));
  EXPECT_NEAR(*record.val_r2, after.r2, 1e-5);
  EXPECT_NEAR(*record.val_mae, after.mae, 1e-5 * after.mae);
  ASSERT_EQ(after.targets.size(), 2u);
  EXPECT_EQ(after.targets[1].name, "second");
  EXPECT_NEAR((after.targets[0].r2 + after.targets[1].r2) / 2, after.r2, 1e-12);
  EXPECT_NEAR((after.targets[0].mae + after.targets[1].mae) / 2, after.mae, 1e-9);
}

TEST(Tables, LabelLikeTargetsWarnOnce) {
  Matrix x(40, 1), y(40, 1);
  for (std::int64_t r = 0; r < 40; ++r) {
    x(r, 0) = static_cast<float>(r);
    y(r, 0) = static_cast<float>(r % 2);
  }
  Sequential model{Dense(1)};
  model.compile(kCpu);
  model.set_column_names({"x"}, {"label"});
  std::vector<std::string> warnings;
  const auto warn = [&](const std::string& w) { warnings.push_back(w); };
  model.fit(x, y, {.epochs = 1, .on_warning = warn});
  model.fit(x, y, {.epochs = 1, .on_warning = warn});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("target column 'label' holds only the values 0, 1"), std::string::npos) << warnings[0];
}

}  // namespace
}  // namespace ember
