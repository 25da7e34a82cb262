// Training behaviour on the CPU reference: convergence, determinism, checkpoints, resume, the
// allocation-free step, partial batches, validation split, divergence, standardization.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>

#include "cpu/cpu_backend.hpp"
#include "ember/backend.hpp"
#include "ember/bench.hpp"
#include "ember/demo.hpp"
#include "ember/ember.hpp"
#include "ember/random.hpp"
#include "plan.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

const CompileOptions kCpuSgd{
    .optimizer = SGD{.lr = 0.05f, .momentum = 0.9f}, .loss = MeanSquaredError{}, .device = Device::cpu};

/// y = x @ beta + 0.5 + noise, with x uniform in [-1, 1).
Dataset linear_data(std::int64_t rows, std::uint64_t seed) {
  Dataset data;
  data.x = testing::random_matrix(rows, 3, seed);
  data.y = Matrix(rows, 1);
  Random noise(seed + 1);
  for (std::int64_t r = 0; r < rows; ++r)
    data.y(r, 0) =
        static_cast<float>(1.5 * data.x(r, 0) - 2.0 * data.x(r, 1) + 0.25 * data.x(r, 2) + 0.5 + 0.1 * noise.normal());
  return data;
}

/// Least squares [w; b] by the normal equations, float64 Gaussian elimination.
std::vector<double> normal_equations(const Matrix& x, const Matrix& y) {
  const std::int64_t n = x.cols() + 1;
  std::vector<std::vector<double>> a(static_cast<std::size_t>(n),
                                     std::vector<double>(static_cast<std::size_t>(n + 1), 0.0));
  for (std::int64_t r = 0; r < x.rows(); ++r) {
    std::vector<double> row(static_cast<std::size_t>(n), 1.0);
    for (std::int64_t c = 0; c < x.cols(); ++c) row[static_cast<std::size_t>(c)] = x(r, c);
    for (std::size_t i = 0; i < row.size(); ++i) {
      for (std::size_t j = 0; j < row.size(); ++j) a[i][j] += row[i] * row[j];
      a[i][static_cast<std::size_t>(n)] += row[i] * y(r, 0);
    }
  }
  for (std::size_t p = 0; p < a.size(); ++p)
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (i == p) continue;
      const double f = a[i][p] / a[p][p];
      for (std::size_t j = p; j < a[i].size(); ++j) a[i][j] -= f * a[p][j];
    }
  std::vector<double> solution;
  for (std::size_t i = 0; i < a.size(); ++i) solution.push_back(a[i][static_cast<std::size_t>(n)] / a[i][i]);
  return solution;
}

TEST(Training, LinearRegressionConvergesToNormalEquations) {
  const Dataset data = linear_data(257, 21);
  Sequential model{Dense(1)};
  model.compile({.optimizer = SGD{.lr = 0.1f}, .loss = MeanSquaredError{}, .device = Device::cpu});
  model.fit(data.x, data.y, {.epochs = 3000, .batch_size = 257, .shuffle = false, .normalize = false});
  const std::vector<double> expected = normal_equations(data.x, data.y);
  const std::vector<float>& learned = model.parameters();  // w (1, 3) then b
  EXPECT_LT(testing::relative_error(learned.data(), expected.data(), 4), 1e-3);
}

TEST(Training, SeedExamplePredictsFive) {
  EXPECT_NEAR(demo::seed_example(Device::cpu), 5.0, 0.1);
}

TEST(Training, HousePriceDemoReachesR2) {
  EXPECT_GE(demo::house_price_mlp(Device::cpu).test_r2, 0.9);
}

TEST(Training, DemoSpiralsAreClassified) {
  // Three interleaved arms: a linear model cannot separate them, the demo's MLP must.
  EXPECT_GE(demo::spiral_classifier(Device::cpu).test_accuracy, 0.9);
  const Dataset data = demo::spirals(600, 3);
  Sequential linear{Dense(3)};
  linear.compile({.optimizer = Adam{.lr = 0.01f}, .loss = CrossEntropy{}, .device = Device::cpu});
  linear.fit(data.x, data.y, {.epochs = 30});
  EXPECT_LT(linear.evaluate(data.x, data.y).accuracy, 0.7);
}

TEST(Training, SameSeedGivesBitIdenticalWeights) {
  const Dataset data = linear_data(100, 3);
  const auto train = [&](std::uint64_t seed) {
    Sequential model({Dense(8, Activation::relu), Dense(1)}, seed);
    model.compile(kCpuSgd);
    model.fit(data.x, data.y, {.epochs = 5, .batch_size = 16, .validation_split = 0.2});
    return model.parameters();
  };
  EXPECT_EQ(train(7), train(7));
  EXPECT_NE(train(7), train(8));
}

TEST(Training, GlorotUniformInitialization) {
  Sequential model({Dense(300, Activation::relu), Dense(1)}, 5);
  model.build(200);
  const double limit = std::sqrt(6.0 / 500.0);
  double sum = 0, squares = 0;
  const std::int64_t n = 300 * 200;
  for (std::int64_t i = 0; i < n; ++i) {
    const float w = model.parameters()[static_cast<std::size_t>(i)];
    ASSERT_LE(std::abs(w), limit);
    sum += w;
    squares += static_cast<double>(w) * w;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01 * limit);
  EXPECT_NEAR(squares / n, limit * limit / 3.0, 0.02 * limit * limit);  // variance of U(-l, l)
  for (std::int64_t i = 0; i < 300; ++i)
    EXPECT_EQ(model.parameters()[static_cast<std::size_t>(model.bias_offset(0) + i)], 0.0f);
}

TEST(Training, SaveLoadGivesIdenticalPredictions) {
  const Dataset data = linear_data(64, 4);
  Sequential model({Dense(16, Activation::relu), Dense(1)}, 1);
  model.compile(kCpuSgd);
  model.fit(data.x, data.y, {.epochs = 3});
  const std::string path = testing::work_path("save_load.safetensors");
  model.save(path);
  Sequential loaded = testing::load_on_cpu(path);
  EXPECT_EQ(loaded.parameters(), model.parameters());
  EXPECT_EQ(loaded.optimizer_state(), model.optimizer_state());
  EXPECT_EQ(loaded.scaler(), model.scaler());
  EXPECT_EQ(loaded.layers(), model.layers());
  EXPECT_EQ(loaded.epochs_completed(), 3);
  EXPECT_EQ(loaded.predict(data.x), model.predict(data.x));
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    EXPECT_EQ(entry.path().string().find("save_load.safetensors.tmp"), std::string::npos) << entry.path();
}

TEST(Training, EveryActivationTrainsSavesAndLoadsIdentically) {
  const Dataset data = linear_data(64, 4);
  for (const std::string& name : activation_names()) {
    const Activation kind = parse_activation(name);
    EXPECT_EQ(to_string(kind), name);
    Sequential model({Dense(16, kind), Dense(8, kind), Dense(1)}, 1);
    model.compile({.optimizer = Adam{.lr = 0.01f}, .device = Device::cpu});
    const History history = model.fit(data.x, data.y, {.epochs = 30, .batch_size = 16});
    EXPECT_LT(history.epochs.back().loss, history.epochs.front().loss) << name;
    const std::string path = testing::work_path("activation_" + name + ".safetensors");
    model.save(path);
    const Sequential loaded = testing::load_on_cpu(path);
    EXPECT_EQ(loaded.layers(), model.layers()) << name;
    EXPECT_EQ(loaded.predict(data.x), model.predict(data.x)) << name;
  }
  EXPECT_THROW(parse_activation("swish"), InputError);
}

TEST(Training, ResumeEqualsUninterruptedRun) {
  // Through a checkpoint, each optimizer's state (momentum; Adam's moments and step count;
  // RMSprop's average and momentum) resumes bit for bit, and so do Dropout's masks (keyed by the
  // epoch and the batch, not by a generator's state).
  const Dataset data = linear_data(90, 5);
  const FitOptions options{.epochs = 3, .batch_size = 16, .validation_split = 0.1};
  for (const Optimizer& optimizer : testing::one_optimizer_of_each_kind()) {
    // Clipped to a norm the first steps reach: the clipping's factor is part of what resumes.
    const CompileOptions compile{.optimizer = optimizer, .clip_norm = 0.5f, .device = Device::cpu};
    Sequential straight({Dense(8, Activation::relu), Dropout(0.25f), Dense(1)}, 2);
    straight.compile(compile);
    FitOptions six = options;
    six.epochs = 6;
    const History full = straight.fit(data.x, data.y, six);

    Sequential first({Dense(8, Activation::relu), Dropout(0.25f), Dense(1)}, 2);
    first.compile(compile);
    first.fit(data.x, data.y, options);
    const std::string path = testing::work_path("resume.safetensors");
    first.save(path);
    Sequential resumed = Sequential::load(path);
    EXPECT_EQ(resumed.compile_options().optimizer, optimizer);
    EXPECT_EQ(resumed.compile_options().clip_norm, 0.5f);
    EXPECT_EQ(resumed.optimizer_step(), first.optimizer_step());
    CompileOptions again = resumed.compile_options();
    again.device = Device::cpu;
    resumed.compile(again);
    const History second = resumed.fit(data.x, data.y, options);
    const std::string name = optimizer_name(optimizer);
    EXPECT_EQ(resumed.parameters(), straight.parameters()) << name;
    EXPECT_EQ(resumed.optimizer_state(), straight.optimizer_state()) << name;
    EXPECT_EQ(resumed.optimizer_step(), straight.optimizer_step()) << name;
    ASSERT_EQ(second.epochs.size(), 3u);
    EXPECT_EQ(second.epochs[0].epoch, 4);
    EXPECT_EQ(second.epochs[2].loss, full.epochs[5].loss) << name;
  }
}

TEST(Training, AdamCountsItsSteps) {
  const Dataset data = linear_data(50, 5);
  Sequential model({Dense(8, Activation::relu), Dense(1)}, 2);
  model.compile({.optimizer = Adam{}, .device = Device::cpu});
  model.fit(data.x, data.y, {.epochs = 2, .batch_size = 16});
  EXPECT_EQ(model.optimizer_step(), 2 * 4);  // four batches an epoch
  EXPECT_EQ(model.optimizer_state().size(), 2 * model.parameters().size());
  // Another optimizer starts from fresh state; the same one with new settings keeps it.
  model.compile({.optimizer = Adam{.lr = 0.01f}, .device = Device::cpu});
  EXPECT_EQ(model.optimizer_step(), 8);
  model.compile({.optimizer = SGD{.momentum = 0.5f}, .device = Device::cpu});
  EXPECT_EQ(model.optimizer_step(), 0);
  EXPECT_EQ(model.optimizer_state(), std::vector<float>(model.parameters().size(), 0.0f));
}

TEST(Training, NoAllocationInsideAStep) {
  const Dataset data = linear_data(50, 6);
  CpuBackend backend;
  const std::vector<Layer> layers{Dense(8, Activation::relu), Dropout(0.5f), Dense(1)};
  Sequential model(layers, 1);
  model.build(3);
  Plan plan(backend, layers, 3, 16, Adam{});
  plan.upload_parameters(model.parameters(), std::vector<float>(2 * model.parameters().size()));
  const BackendMatrix x(backend, data.x), y(backend, data.y);
  std::vector<std::int32_t> order(50);
  std::iota(order.begin(), order.end(), 0);
  plan.bind_training_set(x.view, y.view, order.data());
  const std::size_t before = backend.allocation_count();
  for (int epoch = 0; epoch < 3; ++epoch) {
    plan.reset_epoch();
    for (std::int64_t first = 0; first < 50; first += 16) plan.train_step(std::min<std::int64_t>(16, 50 - first));
  }
  EXPECT_EQ(backend.allocation_count(), before);
  EXPECT_GT(before, 0u);
}

TEST(Training, ClipNormBoundsTheGradientsOfEachStep) {
  const Dataset data = linear_data(64, 8);
  CpuBackend backend;
  const std::vector<Layer> layers{Dense(8, Activation::relu), Dense(1)};
  Sequential model(layers, 1);
  model.build(3);
  const auto gradients = [&](float clip_norm) {
    Plan plan(backend, layers, 3, 64, SGD{}, MeanSquaredError{}, 0, clip_norm);
    plan.upload_parameters(model.parameters());
    const BackendMatrix x(backend, data.x), y(backend, data.y);
    std::vector<std::int32_t> order(64);
    std::iota(order.begin(), order.end(), 0);
    plan.bind_training_set(x.view, y.view, order.data());
    plan.train_step(64);
    const std::vector<float> g = plan.download_gradients();
    double squares = 0.0;
    for (float v : g) squares += static_cast<double>(v) * v;
    return std::pair{g, std::sqrt(squares)};
  };
  const auto [raw, raw_norm] = gradients(0.0f);
  ASSERT_GT(raw_norm, 0.2);
  const auto [clipped, clipped_norm] = gradients(0.1f);
  EXPECT_NEAR(clipped_norm, 0.1, 1e-5);
  EXPECT_NEAR(clipped[0] / raw[0], 0.1 / raw_norm, 1e-5);             // the same direction
  EXPECT_EQ(gradients(static_cast<float>(raw_norm) * 2).first, raw);  // below the bound: untouched
  Sequential bad({Dense(1)});
  EXPECT_THROW(bad.compile({.clip_norm = -1.0f}), InputError);
  EXPECT_THROW(bad.compile({.clip_norm = std::numeric_limits<float>::infinity()}), InputError);
}

// Heavy tails, as a table of delays has: a few feature values 300 standard deviations out and a
// few targets 200 times the rest. SGD with momentum at its default rate diverges within the first
// epoch; with the gradients' norm clipped, the same run trains.
TEST(Training, ClipNormKeepsHeavyTailsFromDiverging) {
  const std::int64_t rows = 20000;
  Matrix x(rows, 8), y(rows, 1);
  Random random(17);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < 8; ++c) x(r, c) = static_cast<float>(random.normal());
    if (random.uniform() < 0.002) x(r, 0) *= 300;
    y(r, 0) = static_cast<float>(x(r, 0) + x(r, 1) + 0.1 * random.normal());
    if (random.uniform() < 0.001) y(r, 0) *= 200;
  }
  const auto train = [&](float clip_norm) {
    Sequential model({Dense(64, Activation::relu), Dense(64, Activation::relu), Dense(1)}, 1);
    model.compile({.optimizer = SGD{.lr = 0.01f, .momentum = 0.9f}, .clip_norm = clip_norm, .device = Device::cpu});
    return model.fit(x, y, {.epochs = 2, .batch_size = 32});
  };
  EXPECT_THROW(train(0.0f), DivergenceError);
  const History clipped = train(1.0f);
  ASSERT_EQ(clipped.epochs.size(), 2u);
  EXPECT_TRUE(std::isfinite(clipped.epochs[1].loss));
  EXPECT_LT(clipped.epochs[1].loss, clipped.epochs[0].loss * 1.5);
}

TEST(Training, FinalPartialBatchIsTrainedOn) {
  const Dataset data = linear_data(50, 7);
  std::int64_t seen_batches = 0;
  Sequential model{Dense(1)};
  model.compile(kCpuSgd);
  model.fit(data.x, data.y,
            {.epochs = 1, .batch_size = 40, .shuffle = false, .on_batch = [&](std::int64_t, std::int64_t n) {
               seen_batches = n;
             }});
  EXPECT_EQ(seen_batches, 2);
  // The same first batch alone ends elsewhere: the 10 remaining rows took a step.
  std::vector<std::int64_t> first40(40);
  std::iota(first40.begin(), first40.end(), 0);
  Sequential truncated{Dense(1)};
  truncated.compile(kCpuSgd);
  truncated.fit(data.x.take_rows(first40), data.y.take_rows(first40),
                {.epochs = 1, .batch_size = 40, .shuffle = false});
  EXPECT_NE(model.parameters(), truncated.parameters());
}

TEST(Training, ValidationSplitTakesTheLastRowsWhenAsked) {
  const Dataset data = linear_data(100, 8);
  Sequential model{Dense(1)};
  model.compile(kCpuSgd);
  const History history =
      model.fit(data.x, data.y,
                {.epochs = 2, .validation_split = 0.25, .validation_rows = ValidationRows::last, .normalize = false});
  std::vector<std::int64_t> last(25);
  std::iota(last.begin(), last.end(), 75);
  const Metrics metrics = model.evaluate(data.x.take_rows(last), data.y.take_rows(last));
  ASSERT_TRUE(history.epochs.back().val_loss.has_value());
  EXPECT_NEAR(*history.epochs.back().val_loss, metrics.mse, 1e-5 * metrics.mse);
  EXPECT_NEAR(*history.epochs.back().val_mae, metrics.mae, 1e-5 * metrics.mae);
}

TEST(Training, DivergenceKeepsTheLastFiniteEpochAndNamesTheBatch) {
  const Dataset data = linear_data(40, 9);
  const CompileOptions options{
      .optimizer = SGD{.lr = 0.9f, .momentum = 0.99f}, .loss = MeanSquaredError{}, .device = Device::cpu};
  Sequential model{Dense(1)};
  model.compile(options);
  std::int64_t finite_epochs = 0;
  try {
    model.fit(data.x, data.y,
              {.epochs = 500, .batch_size = 8, .on_epoch_end = [&](const EpochRecord&) { ++finite_epochs; }});
    FAIL() << "expected a DivergenceError";
  } catch (const DivergenceError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(fmt::format("training diverged at epoch {}, batch ", finite_epochs + 1)), std::string::npos)
        << message;
    EXPECT_NE(message.find(" of 5: the loss became "), std::string::npos) << message;
    EXPECT_NE(message.find("try a smaller learning rate (SGD::lr, now 0.9); or clip the gradients "
                           "(CompileOptions::clip_norm, e.g. 1)"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find(fmt::format("the model keeps the weights of epoch {}, the last finite one", finite_epochs)),
              std::string::npos)
        << message;
    EXPECT_EQ(error.exit_code(), 3);
  }
  ASSERT_GT(finite_epochs, 0);
  EXPECT_EQ(model.epochs_completed(), finite_epochs);
  // Exactly the weights and momentum of an uninterrupted run of that many epochs.
  Sequential same{Dense(1)};
  same.compile(options);
  same.fit(data.x, data.y, {.epochs = finite_epochs, .batch_size = 8});
  EXPECT_EQ(model.parameters(), same.parameters());
  EXPECT_EQ(model.optimizer_state(), same.optimizer_state());
  for (const float w : model.parameters()) EXPECT_TRUE(std::isfinite(w));
}

TEST(Training, DivergenceInTheFirstEpochKeepsTheWeightsOfBeforeFit) {
  const Dataset data = linear_data(40, 9);
  Sequential model{Dense(1)};
  model.compile({.optimizer = SGD{.lr = 1e30f}, .loss = MeanSquaredError{}, .device = Device::cpu});
  model.build(3);
  const std::vector<float> before = model.parameters();
  try {
    model.fit(data.x, data.y, {.epochs = 50, .batch_size = 8, .normalize = false});
    FAIL() << "expected a DivergenceError";
  } catch (const DivergenceError& error) {
    EXPECT_NE(std::string(error.what()).find("training diverged at epoch 1, batch "), std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find("the model keeps the weights of before training"), std::string::npos);
  }
  EXPECT_EQ(model.parameters(), before);
  EXPECT_EQ(model.epochs_completed(), 0);
}

TEST(Training, StandardizationWorksInOriginalUnits) {
  Dataset data = linear_data(200, 10);
  for (std::int64_t r = 0; r < 200; ++r) {
    data.x(r, 0) = 1000.0f + 300.0f * data.x(r, 0);
    data.y(r, 0) = 50000.0f + 20000.0f * data.y(r, 0);
  }
  Sequential model{Dense(1)};
  model.compile(kCpuSgd);
  model.fit(data.x, data.y, {.epochs = 30});
  EXPECT_TRUE(model.scaler().enabled);
  EXPECT_NEAR(model.scaler().y.mean[0], 50000.0 + 20000.0 * 0.5, 20000.0);
  const Metrics metrics = model.evaluate(data.x, data.y);
  EXPECT_GT(metrics.r2, 0.99);
  EXPECT_LT(metrics.mae, 20000.0 * 0.2);  // original units: noise is 0.1 * 20000 per unit
}

TEST(Training, ConstantColumnWarns) {
  Dataset data = linear_data(30, 11);
  for (std::int64_t r = 0; r < 30; ++r) data.x(r, 1) = 4.0f;
  Sequential model{Dense(1)};
  model.compile(kCpuSgd);
  model.set_column_names({"a", "b", "c"}, {"y"});
  std::vector<std::string> warnings;
  model.fit(data.x, data.y, {.epochs = 1, .on_warning = [&](const std::string& w) { warnings.push_back(w); }});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("'b'"), std::string::npos);
  EXPECT_EQ(model.scaler().x.std[1], 1.0);
}

TEST(Training, BadArgumentsThrowInputError) {
  const Dataset data = linear_data(10, 12);
  Sequential model{Dense(1)};
  EXPECT_THROW(model.fit(data.x, data.y), InputError);  // not compiled
  model.compile(kCpuSgd);
  EXPECT_THROW(model.fit(data.x, data.y, {.epochs = -1}), InputError);
  EXPECT_THROW(model.fit(data.x, data.y, {.batch_size = 0}), InputError);
  EXPECT_THROW(model.fit(data.x, data.y, {.validation_split = 1.0}), InputError);
  EXPECT_THROW(model.fit(data.x, Matrix(9, 1)), InputError);
  EXPECT_THROW(model.fit(data.x, Matrix(10, 2)), InputError);
  EXPECT_THROW(model.predict(data.x), InputError);  // no weights yet
  EXPECT_THROW(Sequential({Dense(0)}), InputError);
  EXPECT_THROW(model.compile({.optimizer = SGD{.lr = -1}}), InputError);
}

TEST(Training, ModelsBeyondTheIndexRangeOrMemoryThrowInputError) {
  constexpr std::int64_t widest = std::numeric_limits<std::int32_t>::max();
  EXPECT_THROW(Sequential({Dense(widest + 1)}), InputError);
  Sequential wide{Dense(widest), Dense(1)};
  EXPECT_EQ(wide.parameter_count_for(3), 4 * widest + widest + 1);
  EXPECT_THROW(wide.parameter_count_for(widest + 1), InputError);
  EXPECT_THROW(wide.parameter_count_for(0), InputError);
  Sequential overflowing{Dense(widest), Dense(widest), Dense(widest)};
  EXPECT_THROW(overflowing.parameter_count_for(widest), InputError);  // ~1.4e19 parameters
  // ~4.6e18 parameters: more than any allocation can hold; build fails cleanly and leaves no model.
  Sequential huge{Dense(widest), Dense(widest)};
  try {
    huge.build(1);
    FAIL() << "build allocated 4.6e18 parameters";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("cannot allocate the model's"), std::string::npos) << error.what();
  }
  EXPECT_FALSE(huge.built());
  EXPECT_EQ(huge.parameter_count(), 0);
  // Beyond the backend's memory: refused by fit from the architecture, before anything is
  // allocated (~430 GiB for 4e9 parameters and a batch of 32 through a 1e9-wide layer).
  Sequential beyond{Dense(1'000'000'000, Activation::relu), Dense(1)};
  beyond.compile({.device = Device::cpu});
  try {
    beyond.fit(Matrix(40, 2, 0.5f), Matrix(40, 1, 1.0f), {.epochs = 1, .batch_size = 32});
    FAIL() << "fit trained a 1e9-wide layer";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("training these layers at a batch of 32 rows needs about "),
              std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find("FitOptions::batch_size"), std::string::npos) << error.what();
  }
  EXPECT_FALSE(beyond.built());
}

TEST(Training, FilesAreReplacedWholeOrNotAtAll) {
  const std::string path = testing::work_path("atomic.txt");
  write_file_atomically(path, "first");
  write_file_atomically(path, "second, longer");
  std::ifstream file(path);
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "second, longer");
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    EXPECT_EQ(entry.path().filename().string().find("atomic.txt.tmp"), std::string::npos) << entry.path();
  EXPECT_THROW(write_file_atomically(testing::work_path("no-such-folder/x.txt"), "x"), InputError);
  EXPECT_THROW(check_writable(testing::work_path("no-such-folder/x.txt")), InputError);
  EXPECT_THROW(check_writable(std::filesystem::path(path).parent_path().string()), InputError);  // a folder
  EXPECT_NO_THROW(check_writable(path));
}

}  // namespace
}  // namespace ember
