// How training ends and how its rate moves: schedules, early stopping that returns to the best
// epoch, stopping from a callback or a stop token, exceptions from callbacks, periodic checkpoints,
// validation on rows given apart.
// Each ending is checked against an uninterrupted run of the same epochs: the same bits.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <stdexcept>
#include <stop_token>

#include "ember/ember.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

constexpr double kPi = 3.14159265358979323846;

/// Noisy data on few rows, and a wide model: the validation loss turns up after a few epochs.
struct Problem {
  Matrix x, y;
  Problem() : x(testing::random_matrix(60, 4, 71)), y(testing::random_matrix(60, 1, 72)) {}
};

Sequential fresh_model(const CompileOptions& options) {
  Sequential model({Dense(32, Activation::relu), Dense(1)}, 4);
  model.compile(options);
  return model;
}

const CompileOptions kAdam{.optimizer = Adam{.lr = 0.01f}, .device = Device::cpu};

TEST(Schedules, FactorsFollowTheFormulas) {
  const ScheduleState start{};
  for (std::int64_t epoch = 0; epoch < 10; ++epoch) {
    EXPECT_EQ(schedule_scale(ConstantRate{}, epoch, start), 1.0f);
    EXPECT_FLOAT_EQ(schedule_scale(StepDecay{.step_epochs = 3, .gamma = 0.5f}, epoch, start),
                    static_cast<float>(std::pow(0.5, epoch / 3)));
    const CosineDecay cosine{.epochs = 8, .warmup_epochs = 2, .min_scale = 0.1f};
    const double expected =
        epoch < 2 ? (epoch + 1) / 2.0 : 0.1 + 0.9 * 0.5 * (1 + std::cos(kPi * std::min<double>(epoch - 2, 6) / 6));
    EXPECT_NEAR(schedule_scale(cosine, epoch, start), expected, 1e-6) << epoch;
  }
  // ReduceLROnPlateau: patience 1, factor 0.5; improvements are losses below best * (1 - 1e-4).
  const ReduceOnPlateau plateau{.factor = 0.5f, .patience = 1, .min_scale = 0.2f};
  ScheduleState state;
  const double losses[] = {1.0, 0.9, 0.95, 0.95, 0.8, 0.85, 0.9, 0.9, 0.9, 0.9};
  const float expected[] = {1, 1, 1, 0.5f, 0.5f, 0.5f, 0.25f, 0.25f, 0.2f, 0.2f};
  for (int i = 0; i < 10; ++i) {
    schedule_observe(plateau, losses[i], state);
    EXPECT_EQ(schedule_scale(plateau, i, state), expected[i]) << i;
  }
  EXPECT_THROW(check_schedule(StepDecay{.gamma = 0}), SettingError);
  EXPECT_THROW(check_schedule(CosineDecay{.epochs = 5, .warmup_epochs = 5}), SettingError);
  EXPECT_THROW(check_schedule(ReduceOnPlateau{.factor = 1}), SettingError);
}

TEST(Schedules, EachEpochTrainsAtItsRate) {
  const Problem data;
  CompileOptions options = kAdam;
  options.schedule = StepDecay{.step_epochs = 2, .gamma = 0.5f};
  Sequential model = fresh_model(options);
  const History history = model.fit(data.x, data.y, {.epochs = 5});
  const double rates[] = {0.01, 0.01, 0.005, 0.005, 0.0025};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(history.epochs[static_cast<std::size_t>(i)].lr, rates[i], 1e-9);
  // Resumed through a checkpoint, the schedule continues where it was.
  const std::string path = testing::work_path("schedule.safetensors");
  model.save(path);
  Sequential resumed = Sequential::load(path);
  EXPECT_EQ(resumed.compile_options().schedule, options.schedule);
  CompileOptions again = resumed.compile_options();
  again.device = Device::cpu;
  resumed.compile(again);
  EXPECT_NEAR(resumed.fit(data.x, data.y, {.epochs = 1}).epochs[0].lr, 0.0025, 1e-9);
  // A plateau's state travels in the checkpoint too.
  options.schedule = ReduceOnPlateau{.factor = 0.5f, .patience = 0};
  Sequential plateau = fresh_model(options);
  plateau.fit(data.x, data.y, {.epochs = 8, .validation_split = 0.5});
  plateau.save(path);
  EXPECT_EQ(Sequential::load(path).schedule_state(), plateau.schedule_state());
}

TEST(Schedules, OnEpochBeginSetsEachEpochsRate) {
  const Problem data;
  // A callback that halves the rate every two epochs trains as StepDecay does, bit for bit.
  CompileOptions stepped = kAdam;
  stepped.schedule = StepDecay{.step_epochs = 2, .gamma = 0.5f};
  Sequential reference = fresh_model(stepped);
  const History expected = reference.fit(data.x, data.y, {.epochs = 5, .batch_size = 16});
  Sequential model = fresh_model(kAdam);
  std::vector<std::int64_t> epochs;
  FitOptions options{.epochs = 5, .batch_size = 16};
  options.on_epoch_begin = [&](std::int64_t epoch, double lr) {
    epochs.push_back(epoch);
    EXPECT_DOUBLE_EQ(lr, static_cast<double>(0.01f));  // the optimizer's rate: no schedule
    return lr * std::pow(0.5, static_cast<double>((epoch - 1) / 2));
  };
  const History history = model.fit(data.x, data.y, options);
  EXPECT_EQ(epochs, (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(model.parameters(), reference.parameters());
  for (std::size_t i = 0; i < 5; ++i) EXPECT_DOUBLE_EQ(history.epochs[i].lr, expected.epochs[i].lr);
  // Epochs count on across fits.
  epochs.clear();
  options.epochs = 2;
  model.fit(data.x, data.y, options);
  EXPECT_EQ(epochs, (std::vector<std::int64_t>{6, 7}));
  // A rate that is not one is refused, naming the callback, and the model keeps its epochs.
  for (const double bad : {-1.0, std::nan("")}) {
    options.on_epoch_begin = [bad](std::int64_t, double) { return bad; };
    EXPECT_THROW(model.fit(data.x, data.y, options), SettingError);
    EXPECT_EQ(model.epochs_completed(), 7);
  }
}

TEST(Stopping, OnEpochEndSeesTheEpochsWeights) {
  const Problem data;
  Sequential two = fresh_model(kAdam);
  two.fit(data.x, data.y, {.epochs = 2, .batch_size = 16});
  Sequential model = fresh_model(kAdam);
  std::vector<float> seen;
  std::int64_t completed = 0;
  const std::string path = testing::work_path("epoch_end.safetensors");
  FitOptions options{.epochs = 4, .batch_size = 16};
  options.on_epoch_end = [&](const EpochRecord& record) {
    if (record.epoch != 2) return;
    seen = model.parameters();
    completed = model.epochs_completed();
    model.save(path);
  };
  model.fit(data.x, data.y, options);
  EXPECT_EQ(completed, 2);
  EXPECT_EQ(seen, two.parameters());
  EXPECT_EQ(Sequential::load(path).parameters(), two.parameters());
  EXPECT_NE(model.parameters(), two.parameters());
}

TEST(EarlyStopping, EndsAtTheBestEpochExactly) {
  const Problem data;
  Sequential model = fresh_model(kAdam);
  const History history = model.fit(
      data.x, data.y,
      {.epochs = 200, .batch_size = 8, .validation_split = 0.3, .early_stopping = EarlyStopping{.patience = 3}});
  ASSERT_TRUE(history.best_epoch.has_value());
  EXPECT_EQ(history.stopped, "early stopping");
  EXPECT_EQ(static_cast<std::int64_t>(history.epochs.size()), *history.best_epoch + 3);
  for (const EpochRecord& r : history.epochs) EXPECT_GE(*r.val_loss, *history.epochs[*history.best_epoch - 1].val_loss);
  EXPECT_EQ(model.epochs_completed(), *history.best_epoch);
  // The same bits as a run that stopped there by itself.
  Sequential reference = fresh_model(kAdam);
  reference.fit(data.x, data.y, {.epochs = *history.best_epoch, .batch_size = 8, .validation_split = 0.3});
  EXPECT_EQ(model.parameters(), reference.parameters());
  EXPECT_EQ(model.optimizer_state(), reference.optimizer_state());
  EXPECT_EQ(model.optimizer_step(), reference.optimizer_step());

  // Without restore_best the model keeps its last epoch.
  Sequential last = fresh_model(kAdam);
  const History kept = last.fit(data.x, data.y,
                                {.epochs = 200,
                                 .batch_size = 8,
                                 .validation_split = 0.3,
                                 .early_stopping = EarlyStopping{.patience = 3, .restore_best = false}});
  EXPECT_EQ(last.epochs_completed(), static_cast<std::int64_t>(kept.epochs.size()));
}

TEST(ValidationData, ValidatesAsTheSameRowsHeldOutLastWould) {
  // 60 rows, the last 15 given apart: the same run as validation_split 0.25 of the last rows.
  const Problem data;
  std::vector<std::int64_t> train_rows(45), validation_rows(15);
  std::iota(train_rows.begin(), train_rows.end(), 0);
  std::iota(validation_rows.begin(), validation_rows.end(), 45);
  const Matrix x_train = Matrix::take_rows(data.x, train_rows), y_train = Matrix::take_rows(data.y, train_rows);
  const Matrix x_val = Matrix::take_rows(data.x, validation_rows), y_val = Matrix::take_rows(data.y, validation_rows);
  Sequential given = fresh_model(kAdam), split = fresh_model(kAdam);
  const History a = given.fit(
      x_train, y_train, {.epochs = 4, .batch_size = 8, .validation_data = ValidationData{.x = x_val, .y = y_val}});
  const History b =
      split.fit(data.x, data.y,
                {.epochs = 4, .batch_size = 8, .validation_split = 0.25, .validation_rows = ValidationRows::last});
  ASSERT_EQ(a.epochs.size(), 4u);
  for (std::size_t e = 0; e < 4; ++e) {
    EXPECT_EQ(a.epochs[e].loss, b.epochs[e].loss);
    ASSERT_TRUE(a.epochs[e].val_loss.has_value());
    EXPECT_EQ(*a.epochs[e].val_loss, *b.epochs[e].val_loss);
  }
  EXPECT_EQ(given.parameters(), split.parameters());
  EXPECT_EQ(given.scaler(), split.scaler());  // learned from the training rows alone

  // Refused: a split besides, rows of another width, a table for a fit on matrices.
  Sequential refused = fresh_model(kAdam);
  EXPECT_THROW(refused.fit(x_train, y_train,
                           {.validation_split = 0.2, .validation_data = ValidationData{.x = x_val, .y = y_val}}),
               SettingError);
  EXPECT_THROW(refused.fit(x_train, y_train, {.validation_data = ValidationData{.x = x_val, .y = Matrix(15, 2)}}),
               SettingError);
  const CsvTable table = parse_csv("a,y\n1,2\n", "v.csv");
  EXPECT_THROW(refused.fit(x_train, y_train, {.validation_data = ValidationData{.table = &table}}), SettingError);
  EXPECT_FALSE(refused.built());
}

TEST(ValidationData, ATableValidatesOnAnotherTableOfItsColumns) {
  // The same as holding out the last rows of one file: categories and fills from the training rows.
  std::string head = "city,size,kind\n", train, validation;
  const char* cities[] = {"Lyon", "Nice", "Metz"};
  for (int i = 0; i < 40; ++i)
    (i < 30 ? train : validation) +=
        fmt::format("{},{},{}\n", i % 11 == 0 ? "" : cities[i % 3], i % 7 == 0 ? std::string() : std::to_string(i % 9),
                    i % 3 == 0 ? "yes" : "no");
  const CompileOptions options{.optimizer = Adam{.lr = 0.01f}, .loss = CrossEntropy{}, .device = Device::cpu};
  const ColumnSpec spec{.targets = {"kind"}};
  const CsvTable validation_table = parse_csv(head + validation, "validation.csv");
  Sequential given({Dense(8, Activation::relu), Dense(1)}, 3), split({Dense(8, Activation::relu), Dense(1)}, 3);
  given.compile(options);
  split.compile(options);
  const History a =
      given.fit(parse_csv(head + train, "train.csv"), spec,
                {.epochs = 3, .batch_size = 8, .validation_data = ValidationData{.table = &validation_table}});
  const History b =
      split.fit(parse_csv(head + train + validation, "all.csv"), spec,
                {.epochs = 3, .batch_size = 8, .validation_split = 0.25, .validation_rows = ValidationRows::last});
  ASSERT_EQ(a.epochs.size(), 3u);
  EXPECT_EQ(*a.epochs[2].val_accuracy, *b.epochs[2].val_accuracy);
  EXPECT_EQ(*a.epochs[2].val_loss, *b.epochs[2].val_loss);
  EXPECT_EQ(given.parameters(), split.parameters());
  EXPECT_EQ(given.preprocessing(), split.preprocessing());
  // A label training never saw is refused, naming its cell.
  Sequential refused({Dense(1)}, 3);
  refused.compile(options);
  const CsvTable unseen = parse_csv(head + "Lyon,1,maybe\n", "unseen.csv");
  try {
    refused.fit(parse_csv(head + train, "train.csv"), spec, {.validation_data = ValidationData{.table = &unseen}});
    FAIL() << "an unseen label was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("unseen.csv"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'maybe'"), std::string::npos) << e.what();
  }
}

TEST(Stopping, AStopTokenEndsAtTheLastCompletedEpochAndResumesExactly) {
  const Problem data;
  std::stop_source source;
  Sequential model = fresh_model(kAdam);
  std::int64_t epochs_seen = 0;
  FitOptions options{.epochs = 6, .batch_size = 16};
  options.stop = source.get_token();
  options.on_batch = [&](std::int64_t batch, std::int64_t) {
    if (epochs_seen == 2 && batch == 2) source.request_stop();  // inside the third epoch
  };
  options.on_epoch_end = [&](const EpochRecord&) { ++epochs_seen; };
  const History stopped = model.fit(data.x, data.y, options);
  EXPECT_EQ(stopped.stopped, "stop requested");
  EXPECT_EQ(stopped.epochs.size(), 2u);
  EXPECT_EQ(model.epochs_completed(), 2);
  Sequential two = fresh_model(kAdam);
  two.fit(data.x, data.y, {.epochs = 2, .batch_size = 16});
  EXPECT_EQ(model.parameters(), two.parameters());
  // The rest of the run, resumed: the same as six epochs at once.
  model.fit(data.x, data.y, {.epochs = 4, .batch_size = 16});
  Sequential six = fresh_model(kAdam);
  six.fit(data.x, data.y, {.epochs = 6, .batch_size = 16});
  EXPECT_EQ(model.parameters(), six.parameters());
  EXPECT_EQ(model.optimizer_state(), six.optimizer_state());
}

TEST(Stopping, ExceptionsFromCallbacksKeepTheCompletedEpochs) {
  const Problem data;
  Sequential three = fresh_model(kAdam), two = fresh_model(kAdam);
  three.fit(data.x, data.y, {.epochs = 3, .batch_size = 16});
  two.fit(data.x, data.y, {.epochs = 2, .batch_size = 16});

  Sequential from_epoch_end = fresh_model(kAdam);
  EXPECT_THROW(from_epoch_end.fit(data.x, data.y,
                                  {.epochs = 10,
                                   .batch_size = 16,
                                   .on_epoch_end =
                                       [](const EpochRecord& r) {
                                         if (r.epoch == 3) throw std::runtime_error("enough");
                                       }}),
               std::runtime_error);
  EXPECT_EQ(from_epoch_end.epochs_completed(), 3);  // the epoch it was told about is complete
  EXPECT_EQ(from_epoch_end.parameters(), three.parameters());

  Sequential from_batch = fresh_model(kAdam);
  std::int64_t batches = 0;
  EXPECT_THROW(from_batch.fit(data.x, data.y,
                              {.epochs = 10,
                               .batch_size = 16,
                               .on_batch =
                                   [&](std::int64_t, std::int64_t) {
                                     if (++batches == 10) throw std::runtime_error("mid-epoch");  // in epoch 3
                                   }}),
               std::runtime_error);
  EXPECT_EQ(from_batch.epochs_completed(), 2);
  EXPECT_EQ(from_batch.parameters(), two.parameters());
  EXPECT_EQ(from_batch.optimizer_step(), two.optimizer_step());
}

TEST(Stopping, PeriodicCheckpointsResumeExactly) {
  const Problem data;
  const std::string path = testing::work_path("every.safetensors");
  std::filesystem::remove(path);
  Sequential model = fresh_model(kAdam);
  model.fit(data.x, data.y, {.epochs = 5, .batch_size = 16, .checkpoint_every = 2, .checkpoint_path = path});
  Sequential saved = Sequential::load(path);
  EXPECT_EQ(saved.epochs_completed(), 4);
  CompileOptions options = saved.compile_options();
  options.device = Device::cpu;
  saved.compile(options);
  saved.fit(data.x, data.y, {.epochs = 1, .batch_size = 16});
  EXPECT_EQ(saved.parameters(), model.parameters());
  Sequential refused = fresh_model(kAdam);
  EXPECT_THROW(refused.fit(data.x, data.y, {.epochs = 1, .checkpoint_every = 1}), SettingError);
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

/// rows of x repeated as many times as their weight says.
Matrix repeated(const Matrix& x, const std::vector<float>& weights) {
  std::vector<std::int64_t> index;
  for (std::size_t r = 0; r < weights.size(); ++r)
    for (int k = 0; k < static_cast<int>(weights[r]); ++k) index.push_back(static_cast<std::int64_t>(r));
  return Matrix::take_rows(x, index);
}

double largest_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double largest = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) largest = std::max(largest, std::abs(static_cast<double>(a[i] - b[i])));
  return largest;
}

/// Three models of compile trained with fit on (x, y): with the weights, on the rows repeated as
/// many times as their weights, and without weights.
struct WeightedTrio {
  Sequential weighted, copies, plain;
};
WeightedTrio train_weighted_copies_and_plain(const CompileOptions& compile, FitOptions fit, const Matrix& x,
                                             const Matrix& y, const std::vector<float>& weights) {
  WeightedTrio trio{fresh_model(compile), fresh_model(compile), fresh_model(compile)};
  fit.sample_weight = weights;
  trio.weighted.fit(x, y, fit);
  fit.sample_weight = {};
  trio.copies.fit(repeated(x, weights), repeated(y, weights), fit);
  trio.plain.fit(x, y, fit);
  return trio;
}

TEST(SampleWeight, EqualWeightsTrainAsNoWeights) {
  const Problem data;
  Sequential plain = fresh_model(kAdam);
  plain.fit(data.x, data.y, {.epochs = 3, .batch_size = 16, .validation_split = 0.2});
  for (const float weight : {1.0f, 2.5f}) {
    const std::vector<float> weights(60, weight);
    Sequential weighted = fresh_model(kAdam);
    FitOptions options{.epochs = 3, .batch_size = 16, .validation_split = 0.2};
    options.sample_weight = weights;
    weighted.fit(data.x, data.y, options);
    EXPECT_EQ(weighted.parameters(), plain.parameters()) << weight;  // the factors are exactly 1
  }
}

TEST(SampleWeight, WholeWeightsTrainAsRepeatedRowsAndZeroAsRemovedOnes) {
  // One batch per epoch and no shuffling: the weighted mean of the rows' gradients is the mean over
  // the repeated rows, up to the order of float sums.
  const Problem data;
  std::vector<float> weights(60);
  for (std::size_t r = 0; r < weights.size(); ++r) weights[r] = static_cast<float>(r % 4);  // 0 to 3
  for (const Loss& loss : {Loss{MeanSquaredError{}}, Loss{Huber{}}}) {
    const CompileOptions sgd{.optimizer = SGD{.lr = 0.05f}, .loss = loss, .device = Device::cpu};
    const auto [weighted, copies, plain] = train_weighted_copies_and_plain(
        sgd, {.epochs = 20, .batch_size = 1000, .shuffle = false, .normalize = false}, data.x, data.y, weights);
    EXPECT_LT(largest_difference(weighted.parameters(), copies.parameters()), 2e-5) << loss_name(loss);
    EXPECT_GT(largest_difference(plain.parameters(), copies.parameters()), 1e-3);  // the weights matter
  }
  // Classification: class indices as targets, the same rule.
  Matrix labels(60, 1);
  for (std::int64_t r = 0; r < 60; ++r) labels(r, 0) = data.x(r, 0) > 0.5f ? 1.0f : 0.0f;
  const CompileOptions classes{.optimizer = SGD{.lr = 0.5f}, .loss = CrossEntropy{}, .device = Device::cpu};
  const auto [weighted, copies, plain] = train_weighted_copies_and_plain(
      classes, {.epochs = 20, .batch_size = 1000, .shuffle = false, .normalize = false}, data.x, labels, weights);
  EXPECT_LT(largest_difference(weighted.parameters(), copies.parameters()), 2e-5);
}

TEST(SampleWeight, OneBatchOnARowInvariantBackendGivesTheBitsOfRepeatedRowsInAnyOrder) {
  // Where one batch holds every row, a row-invariant backend's step is a function of its rows as a
  // set: each row's values come from it alone and the weights go into the float64 sums over rows
  // (Plan::sums_rows_exactly). A whole weight then gives the parameters of as many copies, bit for
  // bit, in shuffled orders that differ, with the standardization, momentum and clipping on.
  const Problem data;
  std::vector<float> weights(60);
  for (std::size_t r = 0; r < weights.size(); ++r) weights[r] = static_cast<float>((r * 7) % 5);  // 0 to 4
  Matrix labels(60, 1);
  for (std::int64_t r = 0; r < 60; ++r) labels(r, 0) = data.x(r, 0) > 0.5f ? 1.0f : 0.0f;
  for (const BackendOptions& backend : {BackendOptions{.row_invariant = true}, BackendOptions{.cpu_reference = true}})
    for (const Loss& loss : {Loss{MeanSquaredError{}}, Loss{Huber{}}, Loss{CrossEntropy{}}}) {
      const CompileOptions options{.optimizer = SGD{.lr = 0.05f, .momentum = 0.9f},
                                   .loss = loss,
                                   .clip_norm = 1.0f,
                                   .device = Device::cpu,
                                   .backend = backend};
      const Matrix& y = is_classification(loss) ? labels : data.y;
      const auto [weighted, copies, plain] =
          train_weighted_copies_and_plain(options, {.epochs = 20, .batch_size = 1000}, data.x, y, weights);
      EXPECT_EQ(weighted.parameters(), copies.parameters()) << weighted.backend_name() << " " << loss_name(loss);
      EXPECT_GT(largest_difference(plain.parameters(), copies.parameters()), 1e-3);  // the weights matter
    }
}

TEST(SampleWeight, TheStandardizationCountsEachRowItsWeightsTimes) {
  // With the standardization on (the default), weighted rows give the statistics of the repeated
  // rows, and so the same training; and weights that differ give other statistics.
  const Problem data;
  std::vector<float> weights(60);
  for (std::size_t r = 0; r < weights.size(); ++r) weights[r] = static_cast<float>((r * 7) % 5);  // 0 to 4
  const CompileOptions sgd{.optimizer = SGD{.lr = 0.05f}, .device = Device::cpu};
  const auto [weighted, copies, plain] = train_weighted_copies_and_plain(
      sgd, {.epochs = 20, .batch_size = 1000, .shuffle = false}, data.x, data.y, weights);
  for (const auto& [mine, theirs] :
       {std::pair{&weighted.scaler().x, &copies.scaler().x}, std::pair{&weighted.scaler().y, &copies.scaler().y}})
    for (std::size_t c = 0; c < mine->mean.size(); ++c) {
      EXPECT_NEAR(mine->mean[c], theirs->mean[c], 1e-12 * (1 + std::abs(theirs->mean[c])));
      EXPECT_NEAR(mine->std[c], theirs->std[c], 1e-12 * theirs->std[c]);
    }
  EXPECT_GT(std::abs(plain.scaler().x.mean[0] - copies.scaler().x.mean[0]), 1e-3);
  EXPECT_LT(largest_difference(weighted.parameters(), copies.parameters()), 2e-5);
  EXPECT_LT(testing::relative_error(weighted.predict(data.x), copies.predict(data.x)), 1e-5);
}

TEST(SampleWeight, TablesWeighTheirRowsAndBadWeightsAreRefused) {
  // A table's weights are per table row, also for rows its missing cells drop.
  std::string text = "a,b,y\n";
  const Problem data;
  for (std::int64_t r = 0; r < 60; ++r)
    text +=
        fmt::format("{},{},{}\n", data.x(r, 0), r == 7 ? std::string() : fmt::format("{}", data.x(r, 1)), data.y(r, 0));
  const CsvTable table = parse_csv(text, "weights.csv");
  const ColumnSpec spec{.targets = {"y"}, .missing = Missing::drop};
  const std::vector<float> ones(60, 1.0f);
  Sequential plain = fresh_model(kAdam), weighted = fresh_model(kAdam);
  plain.fit(table, spec, {.epochs = 2, .batch_size = 8});
  FitOptions options{.epochs = 2, .batch_size = 8};
  options.sample_weight = ones;
  weighted.fit(table, spec, options);
  EXPECT_EQ(weighted.parameters(), plain.parameters());

  Sequential model = fresh_model(kAdam);
  const auto refused = [&](std::vector<float> weights, const std::string& message) {
    FitOptions bad{.epochs = 1};
    bad.sample_weight = weights;
    try {
      model.fit(data.x, data.y, bad);
      ADD_FAILURE() << "no error for " << message;
    } catch (const SettingError& error) {
      EXPECT_EQ(error.setting(), "FitOptions::sample_weight");
      EXPECT_NE(std::string(error.what()).find(message), std::string::npos) << error.what();
    }
  };
  refused(std::vector<float>(59, 1.0f), "holds 59 weights for 60 rows of x");
  std::vector<float> negative(60, 1.0f);
  negative[4] = -1.0f;
  refused(negative, "row 5 weighs -1");
  negative[4] = std::nanf("");
  refused(negative, "row 5 weighs nan");
  refused(std::vector<float>(60, 0.0f), "is 0 for every training row");
  EXPECT_EQ(model.epochs_completed(), 0);
  FitOptions short_table{.epochs = 1};
  short_table.sample_weight = ones;
  EXPECT_THROW(model.fit(parse_csv("a,b,y\n1,2,3\n", "one.csv"), spec, short_table), SettingError);
}

}  // namespace
}  // namespace ember
