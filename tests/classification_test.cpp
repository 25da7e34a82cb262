// Classification through the library: class labels from a table (text or numbers), one logit for
// two classes and softmax for more, probabilities and labels, the evaluation figures against a
// computation of their own here, checkpoints, and the losses' refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "ember/backend.hpp"
#include "ember/bench.hpp"
#include "ember/demo.hpp"
#include "ember/ember.hpp"
#include "ember/random.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

const CompileOptions kClassifier{.optimizer = Adam{.lr = 0.02f}, .loss = CrossEntropy{}, .device = Device::cpu};

/// Three labelled blobs, "b" columns apart; the label is text.
std::string blobs_csv(int rows, double separation = 3.0) {
  const char* names[] = {"setosa", "versicolor", "virginica"};
  Random random(17);
  std::string text = "x1,x2,species\n";
  for (int i = 0; i < rows; ++i) {
    const int k = i % 3;
    text += std::to_string(separation * k + random.normal()) + "," +
            std::to_string(separation * (k == 2) + random.normal()) + "," + names[k] + "\n";
  }
  return text;
}

TEST(Classification, TextLabelsTrainAndPredictProbabilities) {
  const CsvTable table = parse_csv(blobs_csv(300), "blobs.csv");
  EXPECT_EQ(class_labels(table, {.targets = {"species"}}),
            (std::vector<std::string>{"setosa", "versicolor", "virginica"}));
  Sequential model{Dense(16, Activation::relu), Dense(outputs_for_classes(3))};
  model.compile(kClassifier);
  const History history = model.fit(table, {.targets = {"species"}}, {.epochs = 30, .validation_split = 0.2});
  ASSERT_TRUE(history.epochs.back().accuracy.has_value());
  EXPECT_FALSE(history.epochs.back().mae.has_value());
  EXPECT_GT(*history.epochs.back().val_accuracy, 0.85);
  EXPECT_LT(history.epochs.back().loss, history.epochs.front().loss);
  EXPECT_EQ(model.classes(), (std::vector<std::string>{"setosa", "versicolor", "virginica"}));
  EXPECT_EQ(model.scaler().y, ColumnStatistics::identity(3));  // labels are never standardized

  const Matrix probabilities = model.predict(table);
  ASSERT_EQ(probabilities.cols(), 3);
  for (std::int64_t r = 0; r < probabilities.rows(); ++r) {
    double sum = 0;
    for (std::int64_t c = 0; c < 3; ++c) sum += probabilities(r, c);
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
  const std::vector<std::string> labels = model.predict_labels(table);
  ASSERT_EQ(labels.size(), 300u);
  std::int64_t right = 0;
  for (std::int64_t r = 0; r < 300; ++r)
    right += labels[static_cast<std::size_t>(r)] == table.column("species").cell(r);
  EXPECT_GT(right, 270);

  // The evaluation figures, computed here from the probabilities: accuracy, log-loss, confusion,
  // macro-F1 (scikit-learn's definitions).
  const Metrics metrics = model.evaluate(table);
  std::vector<std::vector<std::int64_t>> confusion(3, std::vector<std::int64_t>(3, 0));
  double log_loss = 0;
  for (std::int64_t r = 0; r < 300; ++r) {
    const auto truth = static_cast<std::size_t>(r % 3);
    std::size_t predicted = 0;
    for (std::size_t c = 1; c < 3; ++c)
      if (probabilities(r, static_cast<std::int64_t>(c)) > probabilities(r, static_cast<std::int64_t>(predicted)))
        predicted = c;
    ++confusion[truth][predicted];
    log_loss -= std::log(std::max<double>(probabilities(r, static_cast<std::int64_t>(truth)), 1e-300));
  }
  EXPECT_EQ(metrics.confusion, confusion);
  EXPECT_NEAR(metrics.accuracy, static_cast<double>(right) / 300, 1e-12);
  EXPECT_NEAR(metrics.log_loss, log_loss / 300, 1e-6);
  double f1 = 0;
  for (std::size_t c = 0; c < 3; ++c) {
    double predicted = 0;
    for (std::size_t t = 0; t < 3; ++t) predicted += static_cast<double>(confusion[t][c]);
    const double precision = confusion[c][c] / predicted, recall = confusion[c][c] / 100.0;
    f1 += 2 * precision * recall / (precision + recall) / 3;
  }
  EXPECT_NEAR(metrics.macro_f1, f1, 1e-12);
  EXPECT_EQ(metrics.classes, model.classes());

  // Through a checkpoint: the loss, the classes and the same probabilities.
  const std::string path = testing::work_path("blobs.safetensors");
  model.save(path);
  Sequential loaded = testing::load_on_cpu(path);
  EXPECT_EQ(loaded.compile_options().loss, Loss{CrossEntropy{}});
  EXPECT_EQ(loaded.classes(), model.classes());
  EXPECT_EQ(loaded.predict(table), probabilities);
}

TEST(Classification, TwoClassesUseOneLogit) {
  std::string text = "a,b,label\n";
  Random random(3);
  for (int i = 0; i < 200; ++i) {
    const double a = random.normal(), b = random.normal();
    text += std::to_string(a) + "," + std::to_string(b) + "," + (a + b > 0 ? "yes" : "no") + "\n";
  }
  const CsvTable table = parse_csv(text, "binary.csv");
  EXPECT_EQ(outputs_for_classes(2), 1);
  Sequential model{Dense(1)};  // logistic regression
  model.compile(kClassifier);
  model.fit(table, {.targets = {"label"}}, {.epochs = 40});
  EXPECT_EQ(model.classes(), (std::vector<std::string>{"no", "yes"}));
  const Matrix probabilities = model.predict(table);
  ASSERT_EQ(probabilities.cols(), 2);
  EXPECT_NEAR(probabilities(0, 0) + probabilities(0, 1), 1.0f, 1e-6);
  EXPECT_GT(model.evaluate(table).accuracy, 0.95);
  // The logistic model's weights point along (1, 1): a + b decides.
  EXPECT_GT(model.parameters()[0], 0.0f);
  EXPECT_GT(model.parameters()[1], 0.0f);
}

TEST(Classification, AModelOfClassIndicesKeepsTheLabelsItIsGiven) {
  // Class indices 0..2 in a matrix, as scikit-learn's label encoding gives them.
  Matrix x(60, 2), y(60, 1);
  Random random(5);
  for (std::int64_t r = 0; r < 60; ++r) {
    y(r, 0) = static_cast<float>(r % 3);
    x(r, 0) = static_cast<float>(3 * (r % 3) + random.normal());
    x(r, 1) = static_cast<float>(random.normal());
  }
  Sequential model{Dense(3)};
  model.compile(kClassifier);
  model.fit(x, y, {.epochs = 20});
  EXPECT_EQ(model.classes(), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_THROW(model.set_classes({"a", "b"}), InputError);       // not one per class
  EXPECT_THROW(model.set_classes({"a", "b", "a"}), InputError);  // one repeated
  model.set_classes({"setosa", "versicolor", "virginica"});
  // set_column_names keeps them; a checkpoint carries them and predicts them from a table.
  model.set_column_names({"x1", "x2"}, {});
  const std::string path = testing::work_path("indices.safetensors");
  model.save(path);
  const Sequential loaded = Sequential::load(path);
  EXPECT_EQ(loaded.classes(), (std::vector<std::string>{"setosa", "versicolor", "virginica"}));
  const std::vector<std::string> labels = loaded.predict_labels(parse_csv("x1,x2\n0,0\n6,0\n", "new.csv"));
  Matrix rows(2, 2);
  rows(1, 0) = 6.0f;
  const std::vector<std::int64_t> classes = model.predict_classes(rows);
  EXPECT_NE(classes[0], classes[1]);
  EXPECT_EQ(labels, (std::vector<std::string>{loaded.classes()[static_cast<std::size_t>(classes[0])],
                                              loaded.classes()[static_cast<std::size_t>(classes[1])]}));
  Sequential regression{Dense(1)};
  regression.compile({.device = Device::cpu});
  EXPECT_THROW(regression.set_classes({"a", "b"}), InputError);
}

TEST(Classification, RefusalsNameTheProblem) {
  const CsvTable table = parse_csv(blobs_csv(30), "blobs.csv");
  const auto error = [&](Sequential& model, const ColumnSpec& spec) {
    try {
      model.fit(table, spec, {.epochs = 1});
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  Sequential wrong_width{Dense(2)};
  wrong_width.compile(kClassifier);
  EXPECT_EQ(error(wrong_width, {.targets = {"species"}}),
            "the target 'species' has 3 classes, so the model's last layer needs 3 units, not 2");
  Sequential two_targets{Dense(3)};
  two_targets.compile(kClassifier);
  EXPECT_EQ(error(two_targets, {.targets = {"species", "x1"}}),
            "classification takes one target column, not species, x1");
  Sequential regression{Dense(1)};
  regression.compile({.device = Device::cpu});
  EXPECT_EQ(error(regression, {.targets = {"species"}}),
            "blobs.csv:2:3 (column 'species'): 'setosa' is not a number; a regression target must be numeric; to train "
            "a classifier on its labels, use the loss CrossEntropy");
  EXPECT_THROW(class_labels(parse_csv("x,y\n1,a\n2,a\n", "one.csv"), {.targets = {"y"}}), InputError);

  // Evaluating on a label training never saw is an error; predicting does not read labels.
  Sequential model{Dense(3)};
  model.compile(kClassifier);
  model.fit(table, {.targets = {"species"}}, {.epochs = 1});
  const CsvTable unseen =
      parse_csv("x1,x2,species\n1,2,daisy\n", "new.csv", model.preprocessing().csv_options(',', true));
  try {
    model.evaluate(unseen);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(
        std::string(e.what()),
        "new.csv:2:3 (column 'species'): 'daisy' is not one of the model's classes (setosa, versicolor, virginica)");
  }
  EXPECT_EQ(model.predict(unseen).rows(), 1);
  // Matrices: labels must be class indices.
  EXPECT_THROW(model.fit(Matrix{{1, 2}}, Matrix{{3}}), InputError);
  EXPECT_THROW(model.fit(Matrix{{1, 2}}, Matrix{{0.5f}}), InputError);
  EXPECT_THROW(model.predict_classes(Matrix{{1, 2, 3}}), InputError);  // wrong width
  Sequential huber{Dense(1)};
  EXPECT_THROW(huber.compile({.loss = Huber{.delta = 0}, .device = Device::cpu}), SettingError);
}

TEST(Classification, HuberTrainsAndKeepsItsDelta) {
  Matrix x(200, 1), y(200, 1);
  Random random(9);
  for (std::int64_t r = 0; r < 200; ++r) {
    x(r, 0) = static_cast<float>(random.uniform());
    y(r, 0) = 3 * x(r, 0) + (r % 20 == 0 ? 50.0f : 0.0f);  // a few large outliers
  }
  Sequential model{Dense(1)};
  model.compile({.optimizer = SGD{.lr = 0.05f}, .loss = Huber{.delta = 0.5f}, .device = Device::cpu});
  const History history = model.fit(x, y, {.epochs = 20});
  EXPECT_LT(history.epochs.back().loss, history.epochs.front().loss);
  const std::string path = testing::work_path("huber.safetensors");
  model.save(path);
  EXPECT_EQ(Sequential::load(path).compile_options().loss, Loss{Huber{.delta = 0.5f}});
}

}  // namespace
}  // namespace ember
