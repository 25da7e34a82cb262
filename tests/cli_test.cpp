// The real `ember` binary: every bad input gets one clear line and its exit code, and leaves no
// partial output file; a diverged run does not overwrite an existing checkpoint.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cli_support.hpp"
#include "ember/device.hpp"
#include "ember/model.hpp"
#include "ember/testing.hpp"

namespace {

using namespace ember::testing;
namespace fs = std::filesystem;

TEST(Cli, TrainPredictEvaluateRoundTrip) {
  const std::string data = good_csv(), model = dir() + "/model.safetensors", history = dir() + "/history.csv",
                    plot = dir() + "/loss.svg", metrics = dir() + "/metrics.json", predictions = dir() + "/pred.csv";
  const CliRun train = run_ember("train --data " + data +
                                 " --target y --layers 8 --epochs 40 --lr 0.05 --val-split 0.2 --device cpu "
                                 "--save " +
                                 model + " --history " + history + " --plot " + plot + " --metrics-out " + metrics);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  EXPECT_NE(train.out.find("Epoch 40/40"), std::string::npos);
  EXPECT_NE(slurp(history).find("epoch,loss,mae,r2,val_loss,val_mae,val_r2,lr,seconds\n1,"), std::string::npos);
  EXPECT_NE(slurp(plot).find("<svg"), std::string::npos);
  EXPECT_NE(slurp(plot).find("val_loss"), std::string::npos);
  EXPECT_NE(slurp(metrics).find("\"val_loss\""), std::string::npos);

  const CliRun predict =
      run_ember("predict --device cpu --model " + model + " --data " + data + " --out " + predictions);
  ASSERT_EQ(predict.exit_code, 0) << predict.err;
  const std::string text = slurp(predictions);
  EXPECT_EQ(text.substr(0, 12), "y_predicted\n");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 41);

  const CliRun evaluate = run_ember("evaluate --device cpu --model " + model + " --data " + data);
  ASSERT_EQ(evaluate.exit_code, 0) << evaluate.err;
  EXPECT_NE(evaluate.out.find("rows: 40"), std::string::npos);
  const double r2 = std::stod(evaluate.out.substr(evaluate.out.find("r2: ") + 4));
  EXPECT_GT(r2, 0.9);
}

TEST(Cli, MembersTrainAverageAndShowThemselves) {
  // 40 rows: five networks by default, said in a note; --members sets the count.
  const std::string data = good_csv(), model = dir() + "/members.safetensors", metrics = dir() + "/metrics.json";
  const CliRun by_default = run_ember("train --data " + data + " --target y --epochs 3 --device cpu --progress lines");
  ASSERT_EQ(by_default.exit_code, 0) << by_default.err;
  EXPECT_NE(by_default.err.find("note: training 5 networks from seeds 0 to 4"), std::string::npos) << by_default.err;
  EXPECT_NE(by_default.out.find("Member 5 of 5 (seed 4)"), std::string::npos) << by_default.out;
  const CliRun three = run_ember("train --data " + data + " --target y --epochs 3 --members 3 --seed 10 --device cpu " +
                                 "--save " + model + " --metrics-out " + metrics);
  ASSERT_EQ(three.exit_code, 0) << three.err;
  EXPECT_EQ(three.err.find("note: training"), std::string::npos) << "no note for a count given: " << three.err;
  EXPECT_NE(three.out.find("Trained 2 members more (3, 3 epochs)"), std::string::npos) << three.out;
  EXPECT_EQ(nlohmann::json::parse(slurp(metrics)).at("members"), 3);
  const CliRun inspect = run_ember("inspect " + model);
  EXPECT_NE(inspect.out.find("Members: 3 networks"), std::string::npos) << inspect.out;
  EXPECT_NE(inspect.out.find("  seed 12: epoch 3"), std::string::npos) << inspect.out;
  const auto json = nlohmann::json::parse(run_ember("inspect --json " + model).out);
  ASSERT_EQ(json.at("members").size(), 2u);
  EXPECT_EQ(json.at("members")[1].at("seed"), 12);
  EXPECT_EQ(run_ember("predict --device cpu --model " + model + " --data " + data).exit_code, 0);

  // Resumed, every member trains on; a count below the model's is refused, as is 0.
  const CliRun resumed =
      run_ember("train --data " + data + " --target y --epochs 5 --device cpu --progress lines " + "--init " + model);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("Member 3 of 3 (seed 12)\nEpoch 4/5"), std::string::npos) << resumed.out;
  expect_input_error("train --data " + data + " --target y --members 2 --device cpu --init " + model,
                     "--members 2: the model in --init " + model + " has 3 members");
  const CliRun zero = run_ember("train --data " + data + " --target y --members 0 --device cpu");
  EXPECT_EQ(zero.exit_code, 2) << zero.err;
  EXPECT_NE(zero.err.find("--members"), std::string::npos) << zero.err;
}

TEST(Cli, ResumeWithInitContinuesEpochs) {
  const std::string data = good_csv(), first = dir() + "/first.safetensors";
  ASSERT_EQ(run_ember("train --data " + data + " --target y --epochs 0 --device cpu --save " + first).exit_code, 0);
  const CliRun resumed = run_ember("train --data " + data + " --target y --epochs 2 --device cpu --init " + first);
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("Epoch 2/2"), std::string::npos);
  expect_input_error("train --data " + data + " --target y --layers 3 --device cpu --init " + first,
                     "--layers 3 differs from the architecture stored in --init");
}

TEST(Cli, RmspropTrainsWithItsFlagsAndResumesWithThem) {
  const std::string data = good_csv(), model = dir() + "/rmsprop.safetensors";
  const CliRun trained = run_ember("train --data " + data + " --target y --epochs 2 --device cpu --optimizer rmsprop " +
                                   "--alpha 0.9 --momentum 0.5 --lr 0.002 --save " + model);
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  // The stored settings, as `inspect --json` shows them (floats as float32 values).
  const auto optimizer = [&] {
    const CliRun inspected = run_ember("inspect " + model + " --json");
    EXPECT_EQ(inspected.exit_code, 0) << inspected.err;
    return nlohmann::json::parse(inspected.out).at("optimizer");
  };
  nlohmann::json stored = optimizer();
  EXPECT_EQ(stored.at("type"), "rmsprop");
  EXPECT_EQ(stored.at("alpha").get<float>(), 0.9f);
  EXPECT_EQ(stored.at("momentum").get<float>(), 0.5f);
  // Under --init the stored optimizer and settings carry on; its flags still apply on top.
  const CliRun resumed = run_ember("train --data " + data + " --target y --epochs 3 --device cpu --alpha 0.95 --init " +
                                   model + " --save " + model);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  stored = optimizer();
  EXPECT_EQ(stored.at("alpha").get<float>(), 0.95f);
  EXPECT_EQ(stored.at("momentum").get<float>(), 0.5f);
  EXPECT_EQ(stored.at("lr").get<float>(), 0.002f);
}

TEST(Cli, BadFlagsExitTwo) {
  expect_input_error("train --data " + good_csv() + " --target y --device cpu --comm nccl",
                     "--comm nccl: the cpu backend has no collectives of its own");
  expect_input_error("train --data " + good_csv() + " --target y --comm gloo", "--comm: gloo not in {auto,nccl,mpi}");
  const std::string data = good_csv();
  expect_input_error("train --data " + data + " --target y --epochs -1", "--epochs -1: must be 0 or more");
  expect_input_error("train --data " + data + " --target y --lr 0", "--lr 0: must be a finite number > 0");
  expect_input_error("train --data " + data + " --target y --lr -0.5", "--lr -0.5: must be a finite number > 0");
  expect_input_error("train --data " + data + " --target y --lr 1e39", "--lr 1e+39: beyond float32's range");
  expect_input_error("train --data " + data + " --target y --optimizer adam --beta2 1", "--beta2 1: must be in [0, 1)");
  expect_input_error("train --data " + data + " --target y --optimizer adamw --momentum 0.9",
                     "--momentum applies to --optimizer sgd or rmsprop, not adamw");
  // The optimizers that have the setting, in the library's order (a new one with eps joins the end).
  expect_input_error("train --data " + data + " --target y --eps 1e-6", "--eps applies to --optimizer adam, adamw, ");
  expect_input_error("train --data " + data + " --target y --optimizer adam --alpha 0.9",
                     "--alpha applies to --optimizer rmsprop, not adam");
  expect_input_error("train --data " + data + " --target y --optimizer rmsprop --alpha 1",
                     "--alpha 1: must be in [0, 1)");
  expect_input_error("train --data " + data + " --target y --nesterov", "--nesterov needs a momentum > 0");
  expect_input_error("train --data " + data + " --target y --optimizer lbfgs",
                     "--optimizer lbfgs: use sgd, adam, adamw, rmsprop");
  expect_input_error("train --data " + dir() + " --target y", dir() + ": is a directory; give a CSV file");
  expect_input_error("predict --model " + dir() + " --data " + data,
                     dir() + ": is a directory; give a checkpoint file");
  expect_input_error("train --data " + data + " --target y --layers 4000000000",
                     "--layers 4000000000: '4000000000': a Dense layer needs 1 to 2147483647 units");
  expect_input_error("train --data " + data + " --target y --layers 2000000000,2000000000",
                     "training these layers at a batch of 32 rows needs about");
  expect_input_error("train --data " + data + " --target y --batch-size 0", "--batch-size 0: must be 1 or more");
  expect_input_error("train --data " + data + " --target y --val-split 1", "--val-split 1: must be in [0, 1)");
  expect_input_error("train --data " + data + " --target y --val-split -0.1", "--val-split -0.1: must be in [0, 1)");
  expect_input_error("train --data " + data + " --target y --layers 4,x",
                     "--layers 4,x: 'x' is not a layer width or a kind of layer; the forms are WIDTH[:ACTIVATION], "
                     "dropout[:RATE]");
  expect_input_error("train --data " + data + " --target y --device tpu",
                     "--device tpu: unknown device; use auto, cpu or cuda");
  expect_input_error("train --data " + data + " --target y --precision fp16", "--precision fp16: use fp32 or tf32");
  expect_input_error("train --data " + data + " --target y --save /no/such/dir/m.safetensors",
                     "--save /no/such/dir/m.safetensors: the directory '/no/such/dir' does not exist");
  expect_input_error("train --data " + data, "--target is required");
  expect_input_error("train --data " + data + " --target y --epochs many", "");
  expect_input_error("fly", "");
  expect_input_error("bench --runs 5", "--runs 5: at least 20 runs make a median");
  expect_input_error("bench --tables gemm,speed",
                     "--tables: unknown table 'speed'; use gemm, memory, tuning, step, comm and threads");
  expect_input_error("bench --device cpu --width 100", "--width 100: the step table on this device has no such width");
}

TEST(Cli, Tf32OnTheCpuTrainsInFp32WithANotice) {
  const CliRun run = run_ember("train --data " + good_csv() + " --target y --epochs 2 --device cpu --precision tf32");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("note: TF32 applies to the GPU; the CPU computes in FP32"), std::string::npos) << run.err;
}

TEST(Cli, BenchStepTableOnCpuWritesCsv) {
  expect_input_error("bench --device cpu --tables memory",
                     "--tables memory: the gemm, memory and tuning tables run on a GPU");
  const std::string csv = dir() + "/bench.csv";
  fs::remove(csv);
  const CliRun run = run_ember("bench --device cpu --tables step --width 64 --runs 20 --csv " + csv);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("Training step"), std::string::npos) << run.out;
  const std::string text = slurp(csv);
  EXPECT_EQ(text.rfind("table,case,variant,metric,value,yardstick,ratio\n", 0), 0u) << text;
  for (const std::string variant : {"cpu", "cpu-reference"}) {
    const std::string prefix = "step,depth 4 width 64 batch 32," + variant + ",step ms,";
    const auto at = text.find(prefix);
    ASSERT_NE(at, std::string::npos) << text;
    EXPECT_GT(std::stod(text.substr(at + prefix.size())), 0.0) << text;
  }
  EXPECT_EQ(text.find("width 256"), std::string::npos) << "--width 64 keeps only width-64 rows";
}

TEST(Cli, BadInputFilesExitTwoWithoutOutputs) {
  const std::string model = dir() + "/never.safetensors";
  fs::remove(model);
  const auto check = [&](const std::string& content, const std::string& message, const std::string& target = "y") {
    const std::string path = file_with("bad.csv", content);
    expect_input_error("train --device cpu --data " + path + " --target " + target + " --save " + model,
                       path + message);
    EXPECT_FALSE(fs::exists(model));
  };
  check("", ": the file is empty");
  check("x,y\n1,2\n3\n", ":3: 1 fields, but the header has 2");
  check("x,y\n1,2\n3,abc\n5,6\n", ":3:2 (column 'y'): 'abc' is not a number; a regression target must be numeric");
  check("x,y\n1,\n", ": every row has a missing value in a column the model uses");
  check("x,y\n1,nan\n", ": every row has a missing value in a column the model uses");
  check("x,y\n1,Inf\n", ":2:2 (column 'y'): 'Inf' is not a finite float32 number");
  check("x,y\n", ": the file has a header but no data rows");
  check("x,y\n1,2\n", ": no column named 'z'; the columns are: x, y", "z");
  check("x,y\n1,2\n", ": no feature column is left", "x,y");
  expect_input_error("train --data " + dir() + "/missing.csv --target y", dir() + "/missing.csv: cannot open the file");
  expect_input_error("predict --model " + dir() + "/missing.safetensors --data x.csv",
                     dir() + "/missing.safetensors: cannot open the checkpoint");
  const std::string junk = file_with("junk.safetensors", "not a checkpoint at all");
  expect_input_error("predict --model " + junk + " --data x.csv", junk + ": not an Ember checkpoint");
}

TEST(Cli, ConstantColumnWarnsAndTrains) {
  const std::string path = file_with("constant.csv", "x,c,y\n1,5,2\n2,5,4\n3,5,6\n");
  const CliRun run = run_ember("train --device cpu --data " + path + " --target y --epochs 2 --quiet");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("warning: " + path + ": feature column 'c' is constant"), std::string::npos) << run.err;
}

TEST(Cli, DivergenceExitsThreeAndKeepsCheckpoint) {
  const std::string data = good_csv(), model = dir() + "/kept.safetensors";
  ASSERT_EQ(run_ember("train --device cpu --data " + data + " --target y --epochs 1 --save " + model).exit_code, 0);
  const std::string before = slurp(model);
  const CliRun run = run_ember("train --device cpu --data " + data +
                               " --target y --epochs 200 --lr 1e6 --no-normalize --save " + model);
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_NE(run.err.find("error: training diverged at epoch"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("try a smaller learning rate (--lr, now 1000000)"), std::string::npos);
  EXPECT_EQ(slurp(model), before);
}

TEST(Cli, RunsOnAnotherOpenBlasBuildForcedOnItAndSaysSo) {
  // Debian installs OpenBLAS builds side by side; the system's alternatives may name the pthreads
  // one. Ember looks for its own first (RUNPATH); one forced on it (or loaded first by another
  // library of the process, as Debian's numpy does) computes the same model and info names both.
  const std::string other = "/usr/lib/x86_64-linux-gnu/openblas-pthread";
  if (!std::filesystem::exists(other + "/libopenblas.so.0") ||
      ember::cpu_matmul_library().find("OpenMP") == std::string::npos)
    GTEST_SKIP() << "needs Ember built with the OpenMP OpenBLAS and the pthreads build installed beside it";
  const std::string own_model = dir() + "/own.safetensors", forced_model = dir() + "/forced.safetensors";
  const std::string train = "train --device cpu --epochs 3 --quiet --data " + good_csv() + " --target y --save ";
  const CliRun own = run_ember(train + own_model);
  ASSERT_EQ(own.exit_code, 0) << own.err;
  const CliRun forced = run_ember_with_environment("LD_LIBRARY_PATH=" + other, train + forced_model);
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  const CliRun info = run_ember_with_environment("LD_LIBRARY_PATH=" + other, "info");
  EXPECT_NE(info.out.find("(pthreads build, loaded in place of the OpenMP build Ember was built with"),
            std::string::npos)
      << info.out;
  const ember::Matrix x(7, 2, 0.5F);
  const ember::Matrix a = ember::Sequential::load(own_model).predict(x);
  const ember::Matrix b = ember::Sequential::load(forced_model).predict(x);
  EXPECT_LT(ember::testing::relative_error(b, a), ember::testing::kTrainingTolerance) << "the two builds train alike";
}

TEST(Cli, OpenBlasRunsKernelsForTheCpusVectorInstructions) {
  // OpenBLAS 0.3.21 falls back to SSE kernels ("Prescott") on CPUs newer than itself; Ember then
  // switches it to the kernels for the CPU's widest vectors, unless OPENBLAS_CORETYPE names some.
  const std::string library = ember::cpu_matmul_library();
  if (library.find("OpenBLAS") == std::string::npos || library.find("kernels") == std::string::npos)
    GTEST_SKIP() << "needs OpenBLAS that names its kernels: " << library;
  std::vector<std::string> expected;
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    expected = {"SkylakeX kernels", "Cooperlake kernels", "SapphireRapids kernels"};
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    expected = {"Haswell kernels", "Zen kernels"};
#endif
  if (expected.empty()) GTEST_SKIP() << "a CPU without AVX2 or AVX-512: " << library;
  const CliRun info = run_ember("info");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_TRUE(std::ranges::any_of(expected, [&](const std::string& kernels) {
    return info.out.find(kernels) != std::string::npos;
  })) << info.out;
  const CliRun forced = run_ember_with_environment("OPENBLAS_CORETYPE=Prescott", "info");
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(forced.out.find("; Prescott kernels)"), std::string::npos) << "the user's choice stays: " << forced.out;
}

TEST(Cli, HelpAndInfo) {
  for (const std::string command : {"", "train ", "predict ", "evaluate ", "demo ", "info ", "bench "}) {
    const CliRun run = run_ember(command + "--help");
    EXPECT_EQ(run.exit_code, 0) << command;
    EXPECT_NE(run.out.find("Usage"), std::string::npos) << command;
  }
  const CliRun info = run_ember("info");
  EXPECT_EQ(info.exit_code, 0);
  EXPECT_NE(info.out.find("cpu: available"), std::string::npos);
  // Where the CUDA plugin loads, it says whether GPU ranks can sum with NCCL, which it opens at run
  // time: a library that is not there is a reason, not an error.
  if (info.out.find("cuda: plugin ") == std::string::npos) return;
  EXPECT_NE(info.out.find("\nnccl: "), std::string::npos) << info.out;
  const CliRun missing = run_ember_with_environment("EMBER_NCCL_LIBRARY=/nonexistent/libnccl.so.2", "info");
  EXPECT_EQ(missing.exit_code, 0);
  EXPECT_NE(missing.out.find("nccl: unavailable: "), std::string::npos) << missing.out;
  EXPECT_NE(missing.out.find("/nonexistent/libnccl.so.2"), std::string::npos) << missing.out;
}

}  // namespace
