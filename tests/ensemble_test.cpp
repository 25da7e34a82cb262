// Ensembles (FitOptions::members): several networks, each validating on its own fold of the rows,
// predicting their mean; kept whole through checkpoints, and finished by a later fit when a stop
// left members out.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <stop_token>
#include <string>
#include <vector>

#include "ember/ember.hpp"
#include "fit_loop.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

const CompileOptions kCpu{.optimizer = Adam{}, .loss = MeanSquaredError{}, .device = Device::cpu};

/// x (numbers, gaps), city (3 categories, gaps), y = 2x + a city offset + noise, on n rows.
CsvTable noisy_table(int n) {
  const char* cities[] = {"Paris", "Lyon", "Nice", ""};
  std::string text = "x,city,y\n";
  Random random(11);
  for (int i = 0; i < n; ++i) {
    const double x = 4.0 * random.uniform() - 2.0;
    const auto city = static_cast<int>(random.below(4));
    const double y = 2.0 * x + city + random.uniform() - 0.5;
    text += fmt::format("{},{},{}\n", i % 9 == 4 ? "NA" : fmt::format("{:.4f}", x), cities[city], y);
  }
  return parse_csv(text, "noisy.csv");
}

const std::vector<Layer> kLayers = {Dense(8, Activation::relu), Dense(1)};
const ColumnSpec kSpec{.targets = {"y"}};

/// Trains a new model of kLayers (seed 7) as an ensemble of members: 4 epochs, a fifth held out.
History fit_ensemble(Sequential& model, const CsvTable& table, std::int64_t members, FitOptions options = {}) {
  model.compile(kCpu);
  options.epochs = 4;
  options.validation_split = 0.2;
  options.members = members;
  return model.fit(table, kSpec, options);
}

Sequential ensemble(const CsvTable& table, std::int64_t members) {
  Sequential model(kLayers, 7);
  fit_ensemble(model, table, members);
  return model;
}

std::vector<float> predictions(const Sequential& model, const CsvTable& table) {
  const Matrix p = model.predict(table);
  return {p.data(), p.data() + p.size()};
}

TEST(Ensemble, PredictsTheMeanOfItsMembers) {
  const CsvTable table = noisy_table(300);
  std::vector<TrainingSummary> summaries;
  Sequential model(kLayers, 7);
  const History history =
      fit_ensemble(model, table, 3, {.on_train_begin = [&](const TrainingSummary& s) { summaries.push_back(s); }});
  ASSERT_EQ(model.member_count(), 3);
  EXPECT_EQ(model.planned_member_count(), 3);
  ASSERT_EQ(history.members.size(), 2u);
  ASSERT_EQ(summaries.size(), 3u);
  for (std::int64_t k = 0; k < 3; ++k) {
    EXPECT_EQ(summaries[static_cast<std::size_t>(k)].member, k);
    EXPECT_EQ(summaries[static_cast<std::size_t>(k)].members, 3);
    EXPECT_EQ(summaries[static_cast<std::size_t>(k)].validation_rows, summaries[0].validation_rows);
    EXPECT_EQ(model.member_seed(k), 7u + static_cast<std::uint64_t>(k));
    ASSERT_TRUE(model.member_record(k).has_value());
    EXPECT_EQ(model.member_record(k)->epoch, 4);
  }
  EXPECT_THROW(model.member_seed(3), InputError);

  // The first member is the model one network of the same seed gives.
  Sequential single(kLayers, 7);
  single.compile(kCpu);
  single.fit(table, kSpec, {.epochs = 4, .validation_split = 0.2});
  EXPECT_EQ(single.member_count(), 1);
  EXPECT_EQ(single.parameters(), model.parameters());

  // Each member on its own, through the single model with that member's tensors: the ensemble
  // predicts their mean. The members differ (their own seeds and orders).
  const std::vector<float> got = predictions(model, table);
  std::vector<double> mean(got.size(), 0.0);
  for (std::int64_t k = 0; k < 3; ++k) {
    Sequential one = single;
    for (std::size_t l = 0; l < kLayers.size(); ++l)
      for (const std::string& name : one.tensor_names(l)) {
        const ConstView values = model.member_tensor(k, l, name);
        Matrix copy(values.rows, values.cols);
        std::copy(values.data, values.data + values.size(), copy.data());
        one.set_tensor(l, name, copy);
      }
    const std::vector<float> member = predictions(one, table);
    for (std::size_t i = 0; i < mean.size(); ++i) mean[i] += member[i] / 3.0;
    if (k > 0) {
      const ConstView first = model.member_tensor(0, 0, "weight"), other = model.member_tensor(k, 0, "weight");
      EXPECT_FALSE(std::equal(first.data, first.data + first.size(), other.data)) << "member " << k;
    }
  }
  double worst = 0.0, largest = 0.0;
  for (std::size_t i = 0; i < mean.size(); ++i) {
    worst = std::max(worst, std::abs(got[i] - mean[i]));
    largest = std::max(largest, std::abs(mean[i]));
  }
  EXPECT_LE(worst, 1e-6 * largest) << "the ensemble's prediction is not its members' mean";

  // A checkpoint keeps every member, its seed and figures: the same predictions, bit for bit.
  const std::string path = testing::work_path("ensemble.safetensors");
  model.save(path);
  const Sequential loaded = Sequential::load(path);
  EXPECT_EQ(loaded.member_count(), 3);
  EXPECT_EQ(loaded.member_seed(2), 9u);
  EXPECT_EQ(loaded.member_record(2)->loss, model.member_record(2)->loss);
  EXPECT_EQ(predictions(loaded, table), got);

  // Trained on from the checkpoint, each member goes on as it would have in memory: its own fold
  // and order.
  Sequential resumed = Sequential::load(path);
  std::filesystem::remove(path);
  const FitOptions more{.epochs = 2, .validation_split = 0.2};
  model.fit(table, model.preprocessing().spec(), more);
  resumed.fit(table, model.preprocessing().spec(), more);
  for (std::int64_t k = 0; k < 3; ++k) {
    const ConstView a = model.member_tensor(k, 0, "weight"), b = resumed.member_tensor(k, 0, "weight");
    EXPECT_TRUE(std::equal(a.data, a.data + a.size(), b.data)) << "member " << k;
  }
}

TEST(Ensemble, EachMemberValidatesOnItsOwnFold) {
  // 103 rows of 3 classes, a fifth held out: 21 rows. The windows of folds 0 to 3 do not meet,
  // folds 0 to 4 hold out every row between them, and each holds out every class's share.
  constexpr std::int64_t n = 103, held = 21;
  std::vector<std::int64_t> classes;
  for (std::int64_t r = 0; r < n; ++r) classes.push_back(r < 60 ? 0 : r < 90 ? 1 : 2);
  const FitOptions options{.validation_split = 0.2};
  std::vector<int> times_held(n, 0);
  for (std::int64_t fold = 0; fold < 5; ++fold) {
    const std::vector<std::int64_t> order = validation_split_order(n, options, 5, classes, fold);
    ASSERT_EQ(static_cast<std::int64_t>(order.size()), n);
    std::vector<std::int64_t> per_class(3, 0);
    for (std::int64_t i = n - held; i < n; ++i) {
      const std::int64_t r = order[static_cast<std::size_t>(i)];
      ++times_held[static_cast<std::size_t>(r)];
      ++per_class[static_cast<std::size_t>(classes[static_cast<std::size_t>(r)])];
    }
    EXPECT_NEAR(per_class[0], 12, 1) << "fold " << fold;
    EXPECT_NEAR(per_class[1], 6, 1) << "fold " << fold;
    EXPECT_NEAR(per_class[2], 2, 1) << "fold " << fold;
    if (fold == 3) {
      EXPECT_EQ(std::count(times_held.begin(), times_held.end(), 1), 4 * held) << "folds 0 to 3 overlap";
    }
  }
  EXPECT_EQ(std::count(times_held.begin(), times_held.end(), 0), 0) << "a row no fold holds out";
  // The same fold of another seed draws other rows. (Fold 0 being a single network's split is
  // PredictsTheMeanOfItsMembers: the first member is the single model, bit for bit.)
  EXPECT_NE(validation_split_order(n, options, 6, classes, 1), validation_split_order(n, options, 5, classes, 1));
  // Rows held out last (time order) are the same for every fold.
  const FitOptions last{.validation_split = 0.2, .validation_rows = ValidationRows::last};
  EXPECT_EQ(validation_split_order(n, last, 5, classes, 2), validation_split_order(n, last, 5, classes, 0));
}

TEST(Ensemble, ClassifiersAverageTheirProbabilities) {
  std::string text = "a,b,label\n";
  Random random(3);
  for (int i = 0; i < 240; ++i) {
    const double a = 2.0 * random.uniform() - 1.0, b = 2.0 * random.uniform() - 1.0;
    text += fmt::format("{:.4f},{:.4f},{}\n", a, b, a + b > 0.4 ? "high" : a + b < -0.4 ? "low" : "mid");
  }
  const CsvTable table = parse_csv(text, "classes.csv");
  Sequential model({Dense(8, Activation::relu), Dense(3)}, 1);
  model.compile({.optimizer = Adam{}, .loss = CrossEntropy{}, .device = Device::cpu});
  model.fit(table, {.targets = {"label"}}, {.epochs = 40, .validation_split = 0.2, .members = 4});
  ASSERT_EQ(model.member_count(), 4);
  const Matrix p = model.predict(table);
  const std::vector<std::string> labels = model.predict_labels(table);
  for (std::int64_t r = 0; r < p.rows(); ++r) {
    double sum = 0.0;
    std::int64_t best = 0;
    for (std::int64_t c = 0; c < p.cols(); ++c) {
      sum += p(r, c);
      if (p(r, c) > p(r, best)) best = c;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << r;
    EXPECT_EQ(labels[static_cast<std::size_t>(r)], model.classes()[static_cast<std::size_t>(best)]);
  }
  EXPECT_GT(model.evaluate(table).accuracy, 0.6);
}

TEST(Ensemble, AStoppedFitKeepsItsFinishedMembersAndTheNextFitTrainsTheRest) {
  const CsvTable table = noisy_table(300);
  const std::vector<float> whole = predictions(ensemble(table, 3), table);

  // A stop while the third member trains: the model keeps two, and knows it was asked for three.
  std::stop_source stop;
  Sequential model(kLayers, 7);
  const History history =
      fit_ensemble(model, table, 3, {.stop = stop.get_token(), .on_train_begin = [&](const TrainingSummary& s) {
                                       if (s.member == 2) stop.request_stop();
                                     }});
  EXPECT_EQ(history.stopped, "stop requested");
  EXPECT_EQ(model.member_count(), 2);
  EXPECT_EQ(model.planned_member_count(), 3);

  // Saved and loaded, a fit of no further epochs trains the missing member to the first's epoch.
  const std::string path = testing::work_path("stopped.safetensors");
  model.save(path);
  Sequential resumed = Sequential::load(path);
  EXPECT_EQ(resumed.planned_member_count(), 3);
  resumed.compile(kCpu);
  // (A model that learned its columns is given them: one-hot columns inferred the first time.)
  const ColumnSpec learned = resumed.preprocessing().spec();
  resumed.fit(table, learned, {.epochs = 0, .validation_split = 0.2});
  EXPECT_EQ(resumed.member_count(), 3);
  EXPECT_EQ(predictions(resumed, table), whole) << "the finished run differs from the uninterrupted one";
  std::filesystem::remove(path);

  // An ensemble trains on: every member, epochs more.
  resumed.fit(table, learned, {.epochs = 2, .validation_split = 0.2});
  for (std::int64_t k = 0; k < 3; ++k) EXPECT_EQ(resumed.member_record(k)->epoch, 6) << "member " << k;
}

TEST(Ensemble, RefusesCountsItCannotTrain) {
  const CsvTable table = noisy_table(60);
  for (const std::int64_t members : {std::int64_t{-1}, FitOptions::kMaxMembers + 1}) {
    Sequential model(kLayers, 0);
    model.compile(kCpu);
    try {
      model.fit(table, kSpec, {.members = members});
      ADD_FAILURE() << members << " members were not refused";
    } catch (const SettingError& error) {
      EXPECT_NE(std::string(error.what()).find("FitOptions::members"), std::string::npos) << error.what();
    }
    EXPECT_FALSE(model.built());
  }
  Sequential model = ensemble(table, 3);
  try {
    model.fit(table, kSpec, {.members = 2});
    ADD_FAILURE() << "a fit dropped a member";
  } catch (const SettingError& error) {
    EXPECT_NE(std::string(error.what()).find("has 3 members"), std::string::npos) << error.what();
  }
  EXPECT_EQ(model.member_count(), 3);
  // Building anew starts one network again.
  model.build(model.input_width());
  EXPECT_EQ(model.member_count(), 1);
  EXPECT_EQ(model.planned_member_count(), 1);
}

TEST(Ensemble, TheDefaultCountFallsWithTheRows) {
  EXPECT_EQ(table_defaults(500).members, TableDefaults::kMembers);
  EXPECT_EQ(table_defaults(TableDefaults::kMemberRows / 3).members, 3);
  EXPECT_EQ(table_defaults(TableDefaults::kMemberRows).members, 1);
  EXPECT_EQ(table_defaults(10 * TableDefaults::kMemberRows).members, 1);
}

/// y = f(x) + noise on n rows, x uniform in [-2, 2], with a category column that does not matter.
CsvTable table_of(int n, double (*f)(double), double noise) {
  std::string text = "x,kind,y\n";
  Random random(5);
  for (int i = 0; i < n; ++i) {
    const double x = 4.0 * random.uniform() - 2.0;
    text += fmt::format("{:.5f},{},{:.5f}\n", x, i % 3 == 0 ? "a" : "b", f(x) + noise * (random.uniform() - 0.5));
  }
  return parse_csv(text, "f.csv");
}

/// The model or, with FitOptions::compare_linear, whichever of it and a linear model validates
/// better; 3 members, 150 epochs, a fifth held out.
History fit_compared(Sequential& model, const CsvTable& table, bool compare, FitOptions options = {},
                     const CompileOptions& compile = kCpu) {
  model.compile(compile);
  options.epochs = 150;
  options.validation_split = 0.2;
  options.members = 3;
  options.compare_linear = compare;
  return model.fit(table, kSpec, options);
}

double mean_validation_loss(const Sequential& model) {
  double sum = 0.0;
  for (std::int64_t k = 0; k < model.member_count(); ++k) sum += model.member_record(k)->val_loss.value();
  return sum / static_cast<double>(model.member_count());
}

TEST(Ensemble, CompareLinearKeepsTheModelThatValidatesBetter) {
  // A curve: the layers win, and the model is the one trained without the comparison, bit for bit.
  const CsvTable curve = table_of(
      400, [](double x) { return x * x; }, 0.1);
  Sequential network(kLayers, 3), compared(kLayers, 3);
  fit_compared(network, curve, false);
  std::vector<TrainingSummary> summaries;
  const History history = fit_compared(compared, curve, true,
                                       {.on_train_begin = [&](const TrainingSummary& s) { summaries.push_back(s); }});
  ASSERT_TRUE(history.linear.has_value());
  EXPECT_FALSE(history.linear->kept_linear);
  EXPECT_LT(history.linear->network_loss, history.linear->linear_loss);
  EXPECT_DOUBLE_EQ(history.linear->network_loss, mean_validation_loss(network));
  EXPECT_EQ(compared.layers().size(), kLayers.size());
  EXPECT_EQ(compared.parameters(), network.parameters());
  EXPECT_EQ(predictions(compared, curve), predictions(network, curve));
  // The callbacks see the three networks, then the three linear ones.
  ASSERT_EQ(summaries.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(summaries[i].linear, i >= 3) << i;
    EXPECT_EQ(summaries[i].member, static_cast<std::int64_t>(i % 3)) << i;
  }

  // A line under little noise: the linear model wins outright (no blend with the layers validates
  // lower), and is the one a linear model of the same seed trains on the same rows.
  const CsvTable line = table_of(
      300, [](double x) { return 0.5 * x; }, 0.05);
  // Wide layers, which fit the noise of 240 training rows.
  const std::vector<Layer> wide = {Dense(64, Activation::relu), Dense(64, Activation::relu), Dense(1)};
  Sequential layered(wide, 3);
  const History kept = fit_compared(layered, line, true);
  ASSERT_TRUE(kept.linear.has_value());
  ASSERT_TRUE(kept.linear->kept_linear) << kept.linear->network_loss << " against " << kept.linear->linear_loss;
  EXPECT_LT(kept.linear->linear_loss, kept.linear->network_loss);
  ASSERT_EQ(layered.layers().size(), 1u);
  EXPECT_EQ(layered.member_count(), 3);
  // The layers train with Adam, the linear model with FitOptions::linear_optimizer's plain SGD.
  Sequential linear({kLayers.back()}, 3);
  CompileOptions sgd = kCpu;
  sgd.optimizer = SGD{};
  fit_compared(linear, line, false, {}, sgd);
  EXPECT_DOUBLE_EQ(kept.linear->linear_loss, mean_validation_loss(linear));
  EXPECT_EQ(predictions(layered, line), predictions(linear, line));
  EXPECT_EQ(layered.compile_options().optimizer, Optimizer{SGD{}});
}

TEST(Ensemble, TheComparedLinearModelTrainsWithItsOwnOptimizer) {
  const CsvTable line = table_of(
      300, [](double x) { return 0.5 * x; }, 6.0);
  const std::vector<Layer> wide = {Dense(64, Activation::relu), Dense(64, Activation::relu), Dense(1)};
  // The layers with momentum and clipping; the linear model with the optimizer asked for, and the
  // layers' clipping.
  CompileOptions momentum = kCpu;
  momentum.optimizer = SGD{.momentum = 0.9f};
  momentum.clip_norm = 0.5f;
  for (const Optimizer& chosen : {Optimizer{SGD{}}, Optimizer{SGD{.lr = 0.003f}}}) {
    Sequential layered(wide, 3);
    const History kept = fit_compared(layered, line, true, {.linear_optimizer = chosen}, momentum);
    ASSERT_TRUE(kept.linear.has_value());
    // Kept alone or in a blend: the linear model is the one fitted alone with that optimizer.
    ASSERT_GT(kept.linear->linear_share, 0.0) << kept.linear->network_loss << " against " << kept.linear->linear_loss;
    const Sequential& kept_linear = kept.linear->kept_linear ? layered : layered.blended_linear();
    CompileOptions own = momentum;
    own.optimizer = chosen;
    Sequential linear({wide.back()}, 3);
    fit_compared(linear, line, false, {}, own);
    EXPECT_DOUBLE_EQ(kept.linear->linear_loss, mean_validation_loss(linear));
    EXPECT_EQ(predictions(kept_linear, line), predictions(linear, line));
    EXPECT_EQ(kept_linear.compile_options().optimizer, chosen);
    EXPECT_EQ(kept_linear.compile_options().clip_norm, 0.5f);
  }
  // A linear optimizer's bad setting is refused before the layers train.
  Sequential refused(wide, 3);
  EXPECT_THROW(fit_compared(refused, line, true, {.linear_optimizer = SGD{.lr = -1.0f}}, momentum), SettingError);
  EXPECT_FALSE(refused.built());
}

TEST(Ensemble, CompareLinearKeepsABlendWhereItValidatesBest) {
  // A line with a small wave under much noise: the layers and the linear model validate within
  // kBlendGap of each other, and a blend of the two lower than either.
  const CsvTable line = table_of(
      300, [](double x) { return 0.5 * x + 0.3 * std::sin(3.0 * x); }, 6.0);
  const std::vector<Layer> wide = {Dense(8, Activation::relu), Dense(8, Activation::relu), Dense(1)};
  CompileOptions momentum = kCpu;
  momentum.optimizer = SGD{.momentum = 0.9f};
  Sequential blended(wide, 3);
  const History history = fit_compared(blended, line, true, {}, momentum);
  ASSERT_TRUE(history.linear.has_value());
  const LinearComparison& c = *history.linear;
  const std::vector<double> shares(std::begin(LinearComparison::kBlendShares),
                                   std::end(LinearComparison::kBlendShares));
  ASSERT_EQ(c.shares, shares);
  ASSERT_EQ(c.blend_losses.size(), shares.size());
  // The share kept has the lowest loss; the ends are the layers' and the linear model's own.
  const auto lowest = std::min_element(c.blend_losses.begin(), c.blend_losses.end());
  EXPECT_EQ(c.linear_share, shares[static_cast<std::size_t>(lowest - c.blend_losses.begin())]);
  ASSERT_GT(c.linear_share, 0.0);
  ASSERT_LT(c.linear_share, 1.0);
  EXPECT_FALSE(c.kept_linear);
  EXPECT_LT(*lowest, std::min(c.network_loss, c.linear_loss));
  EXPECT_LE(std::abs(c.network_loss - c.linear_loss),
            LinearComparison::kBlendGap * std::min(c.network_loss, c.linear_loss));
  EXPECT_NEAR(c.blend_losses.front(), c.network_loss, 1e-5 * c.network_loss);
  EXPECT_NEAR(c.blend_losses.back(), c.linear_loss, 1e-5 * c.linear_loss);
  EXPECT_EQ(blended.linear_share(), c.linear_share);
  EXPECT_EQ(blended.layers().size(), wide.size());
  EXPECT_EQ(blended.blended_linear().member_count(), 3);

  // It predicts the layers' and the linear model's outputs, each as fitted alone, weighed by the share.
  Sequential layers(wide, 3);
  fit_compared(layers, line, false, {}, momentum);
  Sequential linear({wide.back()}, 3);
  CompileOptions sgd = kCpu;
  sgd.optimizer = SGD{};
  fit_compared(linear, line, false, {}, sgd);
  EXPECT_EQ(blended.parameters(), layers.parameters());
  const std::vector<float> got = predictions(blended, line), mine = predictions(layers, line),
                           theirs = predictions(linear, line);
  ASSERT_EQ(got.size(), mine.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double expected = (1.0 - c.linear_share) * mine[i] + c.linear_share * theirs[i];
    EXPECT_NEAR(got[i], expected, 1e-6 * (1.0 + std::abs(expected))) << i;
  }

  // A checkpoint keeps the blend: the same predictions, bit for bit.
  const std::string path = testing::work_path("blend.safetensors");
  blended.save(path);
  Sequential loaded = Sequential::load(path);
  EXPECT_EQ(loaded.linear_share(), c.linear_share);
  EXPECT_EQ(loaded.blended_linear().compile_options().optimizer, Optimizer{SGD{}});
  EXPECT_EQ(predictions(loaded, line), got);

  // A further fit trains both, in memory as from the checkpoint; the share stays.
  const FitOptions more{.epochs = 2, .validation_split = 0.2};
  blended.fit(line, blended.preprocessing().spec(), more);
  loaded.fit(line, loaded.preprocessing().spec(), more);
  EXPECT_EQ(blended.epochs_completed(), layers.epochs_completed() + 2);
  EXPECT_EQ(blended.blended_linear().epochs_completed(), linear.epochs_completed() + 2);
  EXPECT_EQ(blended.linear_share(), c.linear_share);
  EXPECT_EQ(predictions(loaded, line), predictions(blended, line));
  EXPECT_NE(predictions(blended, line), got);

  // A model built anew is no blend.
  blended.build(blended.input_width());
  EXPECT_EQ(blended.linear_share(), 0.0);
  EXPECT_THROW(blended.blended_linear(), InputError);
}

TEST(Ensemble, AClassifierKeepsTheBetterModelAndNoBlend) {
  // A straight boundary under noisy labels, two classes and three: the two models validate within
  // kBlendGap of each other, but a classifier keeps the better one alone (blends lowered the
  // log-loss, not the accuracy, on real tables).
  for (const int classes : {2, 3}) {
    std::string text = "a,b,label\n";
    Random random(3);
    for (int i = 0; i < 400; ++i) {
      const double a = 2.0 * random.uniform() - 1.0, b = 2.0 * random.uniform() - 1.0;
      const double z = a + b + 1.5 * (random.uniform() - 0.5);
      text += fmt::format("{:.4f},{:.4f},{}\n", a, b,
                          classes == 2 ? (z > 0 ? "yes" : "no")
                          : z > 0.4    ? "high"
                          : z < -0.4   ? "low"
                                       : "mid");
    }
    const CsvTable table = parse_csv(text, "classes.csv");
    Sequential model({Dense(32, Activation::relu), Dense(classes == 2 ? 1 : 3)}, 4);
    model.compile({.optimizer = Adam{}, .loss = CrossEntropy{}, .device = Device::cpu});
    const History history = model.fit(table, {.targets = {"label"}},
                                      {.epochs = 60,
                                       .validation_split = 0.2,
                                       .members = 2,
                                       .compare_linear = true,
                                       .linear_optimizer = Adam{.lr = 0.02f}});
    ASSERT_TRUE(history.linear.has_value());
    const LinearComparison& c = *history.linear;
    EXPECT_LE(std::abs(c.network_loss - c.linear_loss),
              LinearComparison::kBlendGap * std::min(c.network_loss, c.linear_loss))
        << classes;
    EXPECT_TRUE(c.blend_losses.empty()) << classes;
    EXPECT_EQ(c.linear_share, c.linear_loss < c.network_loss ? 1.0 : 0.0) << classes;
    EXPECT_EQ(model.linear_share(), 0.0);
  }
}

TEST(Ensemble, CompareLinearNeedsValidationRowsAndANewModel) {
  const CsvTable line = table_of(
      300, [](double x) { return 0.5 * x; }, 6.0);
  // No validation rows: nothing to compare on.
  Sequential model(kLayers, 3);
  model.compile(kCpu);
  History history = model.fit(line, kSpec, {.epochs = 3, .compare_linear = true});
  EXPECT_FALSE(history.linear.has_value());
  EXPECT_EQ(model.layers().size(), kLayers.size());
  // A model that goes on keeps its layers.
  Sequential trained(kLayers, 3);
  fit_compared(trained, line, false);
  history =
      trained.fit(line, trained.preprocessing().spec(), {.epochs = 3, .validation_split = 0.2, .compare_linear = true});
  EXPECT_FALSE(history.linear.has_value());
  EXPECT_EQ(trained.layers().size(), kLayers.size());
  // A stop while the linear model trains keeps the layers as trained.
  Sequential network(kLayers, 3), stopped(kLayers, 3);
  fit_compared(network, line, false);
  std::stop_source stop;
  fit_compared(stopped, line, true, {.stop = stop.get_token(), .on_train_begin = [&](const TrainingSummary& s) {
                                       if (s.linear) stop.request_stop();
                                     }});
  EXPECT_EQ(stopped.layers().size(), kLayers.size());
  EXPECT_EQ(stopped.parameters(), network.parameters());
}

TEST(Ensemble, ALinearModelThatDivergesLosesTheComparison) {
  // Unscaled inputs near 1000 at SGD's rate: a linear output steps far past the minimum, while
  // tanh units saturate and pass the output layer bounded values.
  Matrix x(200, 2), y(200, 1);
  Random random(2);
  for (std::int64_t r = 0; r < 200; ++r) {
    x(r, 0) = static_cast<float>(1000.0 + 100.0 * random.uniform());
    x(r, 1) = static_cast<float>(1000.0 * random.uniform());
    y(r, 0) = static_cast<float>(random.uniform());
  }
  const std::vector<Layer> layers = {Dense(8, Activation::tanh), Dense(1)};
  Sequential model(layers, 1), network(layers, 1);
  const CompileOptions sgd{.optimizer = SGD{}, .loss = MeanSquaredError{}, .device = Device::cpu};
  model.compile(sgd);
  network.compile(sgd);
  const FitOptions options{.epochs = 5, .validation_split = 0.2, .normalize = false};
  FitOptions compared = options;
  compared.compare_linear = true;
  network.fit(x, y, options);
  const History history = model.fit(x, y, compared);
  ASSERT_TRUE(history.linear.has_value());
  EXPECT_TRUE(std::isinf(history.linear->linear_loss));
  EXPECT_FALSE(history.linear->kept_linear);
  EXPECT_EQ(model.layers().size(), layers.size());
  EXPECT_EQ(model.parameters(), network.parameters());
}

}  // namespace
}  // namespace ember
