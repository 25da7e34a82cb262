// A downstream program built against an installed Ember: the seed example on the CPU; a model
// trained on a table with an id, a category and a gap, saved, loaded and predicting raw rows; and
// the installed testing helpers comparing the fast CPU path (and the GPU, where one is usable)
// with the float64 reference. Its one argument: how the library names the OpenBLAS build it was
// configured with ("(OpenMP build)"), or empty.
#include <cmath>
#include <cstdio>
#include <ember/ember.hpp>
#include <ember/testing.hpp>
#include <stop_token>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  // Keras' seed example: Dense(1), SGD, MSE on x = y = 1..4, 1000 epochs, no standardization.
  ember::Sequential seed{ember::Dense(1)};
  seed.compile({.device = ember::Device::cpu});
  const ember::Matrix ones_to_four{{1.0f}, {2.0f}, {3.0f}, {4.0f}};
  seed.fit(ones_to_four, ones_to_four, {.epochs = 1000, .normalize = false});
  const double prediction = seed.predict(ember::Matrix{{5.0f}})(0, 0);
  std::printf("consumer: predict(5) = %.4f\n", prediction);
  if (std::abs(prediction - 5.0) >= 0.1) return 1;

  std::string text = "id,city,x,y\n";
  for (int i = 0; i < 30; ++i)
    text += "c" + std::to_string(i) + (i % 2 ? ",Lyon," : ",Paris,") + (i % 5 ? std::to_string(i) : "NA") + "," +
            std::to_string(i + 10 * (i % 2)) + "\n";
  ember::Sequential model{ember::Dense(4, ember::Activation::relu), ember::Dense(1)};
  model.compile({.device = ember::Device::cpu});
  model.fit(ember::parse_csv(text, "consumer.csv"),
            {.targets = {"y"}, .ignore = {"id"}, .one_hot = {"city"}, .missing = ember::Missing::mean}, {.epochs = 5});
  model.save("consumer.safetensors");
  ember::Sequential loaded = ember::Sequential::load("consumer.safetensors");
  const ember::CsvTable rows =
      ember::parse_csv("x,city\n3,Lyon\nNA,Paris\n", "rows.csv", loaded.preprocessing().csv_options());
  const bool same = loaded.predict(rows) == model.predict(rows);
  std::printf("consumer: table model reloaded, predictions %s\n", same ? "identical" : "DIFFER");
  if (!same) return 1;

  // The OpenBLAS build the library was configured with, whatever the system's alternatives name.
  const std::string blas = ember::cpu_matmul_library(), configured = argc > 1 ? argv[1] : "";
  std::printf("consumer: %s\n", blas.c_str());
  if (!configured.empty() &&
      (blas.find(configured) == std::string::npos || blas.find("loaded in place") != std::string::npos))
    return 1;

  ember::Matrix x(200, 4), y(200, 1);
  for (std::int64_t r = 0; r < 200; ++r) {
    for (std::int64_t c = 0; c < 4; ++c) x(r, c) = static_cast<float>(std::sin(0.37 * static_cast<double>(r * 4 + c)));
    y(r, 0) = x(r, 0) * x(r, 1) - x(r, 3);
  }
  const ember::testing::TrainingSide reference{.device = ember::Device::cpu, .backend = {.cpu_reference = true}};
  std::vector<ember::testing::TrainingSide> sides{{.device = ember::Device::cpu}};
  if (ember::cuda_unavailable_reason().empty()) sides.push_back({.device = ember::Device::cuda});
  for (const ember::testing::TrainingSide& side : sides) {
    const ember::testing::TrainingComparison comparison = ember::testing::compare_training(
        {ember::Dense(32, ember::Activation::relu), ember::Dense(1)}, {.optimizer = ember::Adam{.lr = 0.003f}}, x, y,
        {.epochs = 2, .batch_size = 16}, reference, side);
    std::printf("consumer: %s against the reference:\n%s", ember::to_string(side.device).c_str(),
                comparison.report().c_str());
    if (!comparison.within_tolerance()) return 1;
  }

  // The conveniences and the stopping that keeps the work, through the installed headers.
  const ember::Matrix small(2, 2, std::vector<float>{1, 2, 3, 4});
  if (small.at(1, 0) != 3.0f || ember::to_string(small) != "[[1, 2], [3, 4]]") return 1;
  ember::Sequential trained{ember::Dense(8, ember::Activation::relu), ember::Dense(1)};
  trained.compile({.optimizer = ember::Adam{.lr = 0.01f}, .device = ember::Device::cpu});
  std::stop_source stop;
  ember::FitOptions options{.epochs = 10, .batch_size = 16};
  options.stop = stop.get_token();
  options.on_epoch_end = [&](const ember::EpochRecord& record) {
    if (record.epoch == 3) stop.request_stop();
  };
  const ember::History history = trained.fit(x, y, options);
  const ember::Sequential copy = trained;
  const bool kept = history.stopped == "stop requested" && trained.epochs_completed() == 3 &&
                    copy.predict(x) == trained.predict(x) && trained.weight(0).rows == 8;
  std::printf("consumer: stopped after epoch %lld, copy predicts alike: %s\n",
              static_cast<long long>(trained.epochs_completed()), kept ? "yes" : "NO");
  return kept ? 0 : 1;
}
