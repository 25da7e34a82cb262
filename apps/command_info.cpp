// ember info / ember demo.
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "cli_common.hpp"
#include "ember/backend.hpp"
#include "ember/demo.hpp"
#include "ember/ember.hpp"

namespace ember::cli {

void add_info_commands(CLI::App& app) {
  CLI::App* info = app.add_subcommand("info", "Show the backends and devices Ember can use");
  info->callback([] {
    // GPU ranks sum with NCCL where the nccl line says it is available, else through MPI.
    const std::string mpi = distributed::mpi_compiled() ? "available" : "not built (configured without MPI)";
    std::fputs(("ember 0.1.0\n" + describe_devices() + describe_threads() + "\ndistributed: MPI " + mpi + "\n").c_str(),
               stdout);
  });

  auto device = std::make_shared<std::string>("auto");
  CLI::App* demo = app.add_subcommand("demo", "Train the built-in examples and print their results");
  demo->add_option("--device", *device, "auto, cpu or cuda")->capture_default_str();
  demo->callback([device] {
    require_one_process("ember demo");
    const Device chosen = parse_device_flag(*device);
    std::string notice;
    const std::string backend = make_backend(chosen, {}, &notice)->name();
    if (!notice.empty()) std::fprintf(stderr, "note: %s\n", notice.c_str());
    std::printf("Ember demo on %s\n", backend.c_str());
    std::printf("seed example: Dense(1), SGD lr 0.01, MSE, x = y = [1, 2, 3, 4], 1000 epochs\n");
    std::fflush(stdout);
    std::printf("seed example: predict(5) = %.4f\n", demo::seed_example(chosen));
    std::printf("house prices: MLP 5-64-64-1 (ReLU), SGD lr 0.01 momentum 0.9, 3200 training rows, 800 held out\n");
    std::fflush(stdout);
    const demo::HousePriceResult result = demo::house_price_mlp(chosen);
    std::printf("house prices: test R2 = %.4f (test MAE %.2f thousand, %lld epochs)\n", result.test_r2, result.test_mae,
                static_cast<long long>(result.epochs));
    std::printf(
        "classification: three interleaved spirals, MLP 2-64-64-3 (ReLU), softmax cross-entropy, Adam lr 0.01, 50 "
        "epochs, "
        "1200 training points, 300 held out\n");
    std::fflush(stdout);
    const demo::ClassificationResult spirals = demo::spiral_classifier(chosen);
    std::printf("classification: test accuracy = %.4f\n", spirals.test_accuracy);
  });
}

}  // namespace ember::cli
