// The command line's first hour: outputs checked before any work, hints that name flags the same
// command accepts, consistent limits, inputs of the wrong kind named as such, progress fit for
// logs, help that says what each command prints, and `ember inspect`.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_support.hpp"
#include "ember/layers.hpp"
#include "test_support.hpp"

namespace {

using namespace ember::testing;
namespace fs = std::filesystem;

/// A folder that exists but where no file can be created: read-only for a user; for root (who
/// writes anywhere) a folder of /proc.
std::string unwritable_folder() {
  const std::string folder = dir() + "/read-only";
  fs::create_directories(folder);
  chmod(folder.c_str(), 0555);
  if (access(folder.c_str(), W_OK) != 0) return folder;
  return "/proc/self";
}

/// The run fails with exit code 2 and one error line that contains fragment (anywhere in it).
void expect_refused(const std::string& arguments, const std::string& fragment) {
  const CliRun run = run_ember(arguments);
  EXPECT_EQ(run.exit_code, 2) << arguments << "\n" << run.err;
  EXPECT_EQ(run.err.rfind("error: ", 0), 0u) << run.err;
  EXPECT_NE(run.err.find(fragment), std::string::npos) << arguments << "\nstderr: " << run.err;
}

/// species from petal and sepal, with a city column and a few gaps.
std::string iris_csv() {
  std::string text = "petal,sepal,city,species\n";
  const char* names[] = {"setosa", "versicolor", "virginica"};
  const char* cities[] = {"Lyon", "Paris"};
  for (int i = 0; i < 90; ++i)
    text += std::to_string(3 * (i % 3) + 0.1 * (i % 7)) + "," + (i % 17 == 5 ? "" : std::to_string((i % 5) * 0.2)) +
            "," + cities[i % 2] + "," + names[i % 3] + "\n";
  return file_with("iris.csv", text);
}

TEST(CliUsability, UnwritableOutputsAreRefusedBeforeTraining) {
  const std::string data = good_csv(), folder = unwritable_folder();
  for (const std::string flag : {"--save", "--history", "--plot", "--metrics-out"}) {
    const CliRun run =
        run_ember("train --device cpu --epochs 3 --data " + data + " --target y " + flag + " " + folder + "/out");
    EXPECT_EQ(run.exit_code, 2) << flag << ": " << run.err;
    EXPECT_NE(run.err.find("error: " + flag + " " + folder + "/out: cannot write in the directory '" + folder + "'"),
              std::string::npos)
        << run.err;
    EXPECT_EQ(run.out.find("Training on"), std::string::npos) << flag << " was checked after training began";
  }
  const std::string model = dir() + "/m.safetensors";
  ASSERT_EQ(run_ember("train --device cpu --epochs 1 --quiet --data " + data + " --target y --save " + model).exit_code,
            0);
  expect_refused("predict --device cpu --model " + model + " --data " + data + " --out " + folder + "/p.csv",
                 "--out " + folder + "/p.csv: cannot write in the directory");
  expect_refused("evaluate --device cpu --model " + model + " --data " + data + " --metrics-out " + folder + "/m.json",
                 "--metrics-out " + folder + "/m.json: cannot write in the directory");
  // The check leaves nothing behind in a writable folder.
  const std::string fresh = dir() + "/fresh";
  fs::create_directories(fresh);
  EXPECT_EQ(
      run_ember("train --device cpu --epochs 0 --data " + data + " --target y --history " + fresh + "/h.csv").exit_code,
      0);
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(fresh)) left.push_back(entry.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"h.csv"});
}

TEST(CliUsability, HintsNameFlagsTheCommandAccepts) {
  const std::string data = good_csv(), model = dir() + "/m.safetensors";
  ASSERT_EQ(
      run_ember("train --device cpu --epochs 1 --quiet --missing error --data " + data + " --target y --save " + model)
          .exit_code,
      0);
  const std::string gap = file_with("gap.csv", "x0,x1,y\n0.5,,1\n");
  // predict cannot take --missing: its hint is to fill the cell or train again.
  for (const std::string command : {"predict", "evaluate"}) {
    const CliRun run = run_ember(command + " --device cpu --model " + model + " --data " + gap);
    EXPECT_EQ(run.exit_code, 2) << run.err;
    EXPECT_NE(run.err.find(gap + ":2:2 (column 'x1'): missing value"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("train again with --missing fill"), std::string::npos) << run.err;
    EXPECT_EQ(run.err.find("use --missing"), std::string::npos) << run.err;
  }
  // A text target with a regression loss: the hint names the classification flag, and that flag trains.
  const std::string iris = iris_csv();
  expect_refused("train --device cpu --loss mse --data " + iris + " --target species --one-hot city --missing mean",
                 "is not a number; a regression target must be numeric; to train a classifier on its labels, use "
                 "--loss crossentropy");
  EXPECT_EQ(run_ember("train --device cpu --epochs 2 --quiet --data " + iris +
                      " --target species --one-hot city --missing mean --loss crossentropy")
                .exit_code,
            0);
}

TEST(CliUsability, ScheduleFlagsNameTheSchedulesThatTakeThem) {
  const std::string data = good_csv(), train = "train --device cpu --data " + data + " --target y ";
  expect_refused(train + "--schedule cosine --step-epochs 5", "--step-epochs applies to --schedule step, not cosine");
  expect_refused(train + "--schedule plateau --step-epochs 5", "--step-epochs applies to --schedule step, not plateau");
  expect_refused(train + "--schedule constant --decay 0.5",
                 "--decay applies to --schedule step or plateau, not constant");
  expect_refused(train + "--schedule step --warmup-epochs 2", "--warmup-epochs applies to --schedule cosine, not step");
  expect_refused(train + "--schedule cosine --plateau-patience 2",
                 "--plateau-patience applies to --schedule plateau, not cosine");
  expect_refused(train + "--schedule step --min-lr-scale 0.1",
                 "--min-lr-scale applies to --schedule cosine or plateau, not step");
  for (const std::string accepted : {"--schedule step --step-epochs 2 --decay 0.5", "--schedule plateau --decay 0.5",
                                     "--schedule cosine --warmup-epochs 1 --min-lr-scale 0.1"})
    EXPECT_EQ(run_ember(train + "--epochs 2 --quiet " + accepted).exit_code, 0) << accepted;
}

TEST(CliUsability, ModelsBeyondTheMemoryAreRefusedBeforeAllocating) {
  const CliRun run = run_ember("train --device cpu --data " + good_csv() + " --target y --layers 1000000000");
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_NE(run.err.find("error: training these layers at a batch of 32 rows needs about "), std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find(" GiB of memory on cpu, which has "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("use fewer or narrower layers (--layers) or a smaller --batch-size"), std::string::npos)
      << run.err;
}

TEST(CliUsability, LimitsAndOverlapsAreConsistent) {
  const std::string data = good_csv(), train = "train --device cpu --data " + data + " --target y ";
  expect_refused(train + "--ignore y", "--ignore y: 'y' is a target column; a target cannot be a feature");
  expect_refused(train + "--val-split 0.999", "--val-split 0.999 leaves no training rows out of 40");
  expect_refused(train + "--early-stopping -3", "--early-stopping -3: must be 0 (off) or more");
  expect_refused(train + "--checkpoint-every -1", "--checkpoint-every -1: must be 0 (off) or more");
  expect_refused(train + "--early-stopping 0 --min-delta 0.1",
                 "--min-delta and --no-restore-best go with --early-stopping PATIENCE (1 or more)");
  // 0 is off: every epoch runs, and no checkpoint is asked for.
  const CliRun off =
      run_ember(train + "--epochs 15 --progress lines --optimizer adam --early-stopping 0 --checkpoint-every 0");
  ASSERT_EQ(off.exit_code, 0) << off.err;
  EXPECT_NE(off.out.find("Epoch 15/15"), std::string::npos) << off.out;
  EXPECT_EQ(off.out.find("early stopping"), std::string::npos) << off.out;
  const CliRun help = run_ember("train --help");
  EXPECT_NE(help.out.find("0: off"), std::string::npos) << help.out;
}

TEST(CliUsability, FilesOfTheWrongKindAreNamedAsSuch) {
  const std::string data = good_csv(), model = dir() + "/m.safetensors";
  ASSERT_EQ(run_ember("train --device cpu --epochs 1 --quiet --data " + data + " --target y --save " + model).exit_code,
            0);
  expect_refused("train --device cpu --data " + model + " --target y",
                 model + ": a binary file, not CSV text (it holds NUL bytes)");
  expect_refused("predict --device cpu --model " + data + " --data " + data,
                 data + ": not an Ember checkpoint: it starts with text ('x0,x1,y...'), as a CSV file does");
  expect_refused("inspect " + data, data + ": not an Ember checkpoint");
}

TEST(CliUsability, CommentLinesAreHintedAndSkipped) {
  const std::string commented = file_with("commented.csv", "# sample data, units in cm\n" + slurp(good_csv()));
  expect_refused("train --device cpu --data " + commented + " --target y",
                 "the first line starts with '#': if it is a comment, skip such lines with --comment '#'");
  const std::string model = dir() + "/m.safetensors";
  const CliRun run = run_ember("train --device cpu --epochs 1 --quiet --comment '#' --data " + commented +
                               " --target y --save " + model);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const CliRun evaluate = run_ember("evaluate --device cpu --comment '#' --model " + model + " --data " + commented);
  ASSERT_EQ(evaluate.exit_code, 0) << evaluate.err;
  EXPECT_NE(evaluate.out.find("rows: 40"), std::string::npos) << evaluate.out;
  expect_refused("train --device cpu --comment '##' --data " + commented + " --target y",
                 "--comment ##: give one character");
}

TEST(CliUsability, TheDelimiterHintComesFirstWhateverTheRowsHold) {
  const std::string quoted = file_with("quoted.csv", "id;city;note;amount\ncust_1;Lyon;\"note; 0\";291.12\n");
  expect_refused("train --device cpu --data " + quoted + " --target amount",
                 "the file looks ';'-separated, so use --delimiter ;");
  const std::string quoted_header = file_with("quoted_header.csv", "\"id\";\"amount\"\n\"a\";1\n");
  expect_refused("train --device cpu --data " + quoted_header + " --target amount",
                 "the file looks ';'-separated, so use --delimiter ;");
}

TEST(CliUsability, ProgressIsOneLinePerEpochInLogs) {
  const std::string train = "train --device cpu --epochs 3 --data " + good_csv() + " --target y ";
  // Standard output is a file here: no carriage return, one line per epoch.
  const CliRun piped = run_ember(train);
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.out.find('\r'), std::string::npos);
  EXPECT_NE(piped.out.find("Epoch 3/3 - "), std::string::npos) << piped.out;
  const CliRun bar = run_ember(train + "--progress bar");
  EXPECT_NE(bar.out.find('\r'), std::string::npos) << bar.out;
  EXPECT_EQ(run_ember(train + "--progress none").out.find("Epoch"), std::string::npos);
  // On a terminal (script gives one) the bar is drawn, unless a launcher started the process:
  // mpirun hands its ranks a terminal even when its own output goes to a log.
  if (std::system("command -v script >/dev/null 2>&1") != 0) GTEST_SKIP() << "no 'script' to run on a terminal";
  const std::string line = std::string(EMBER_CLI_PATH) + " " + train;
  const CliRun terminal = run_shell("script -qec '" + line + "' /dev/null");
  EXPECT_NE(terminal.out.find('\r'), std::string::npos) << terminal.out;
  const CliRun launched = run_shell("script -qec 'env OMPI_COMM_WORLD_SIZE=1 " + line + "' /dev/null");
  EXPECT_NE(launched.out.find("Epoch 3/3 - "), std::string::npos) << launched.out;
  EXPECT_EQ(launched.out.find("/2 ["), std::string::npos) << launched.out;  // no bar's "batch/batches ["
}

TEST(CliUsability, HelpSaysWhatEvaluateAndPredictPrint) {
  const std::string evaluate = run_ember("evaluate --help").out;
  for (const std::string figure : {"mse", "r2", "accuracy", "log-loss", "macro-F1", "confusion matrix"})
    EXPECT_NE(evaluate.find(figure), std::string::npos) << figure << "\n" << evaluate;
  const std::string predict = run_ember("predict --help").out;
  EXPECT_NE(predict.find("TARGET_probability_CLASS"), std::string::npos) << predict;
  EXPECT_NE(run_ember("--help").out.find("inspect"), std::string::npos);
}

TEST(CliUsability, LayersNameTheirActivations) {
  const std::string data = good_csv(), model = dir() + "/m.safetensors";
  const CliRun train = run_ember("train --device cpu --epochs 5 --quiet --optimizer adam --data " + data +
                                 " --target y --layers 16:gelu,8:tanh,8:silu,8:sigmoid,8:leaky_relu,8:gelu_tanh,8 "
                                 "--save " +
                                 model);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  const CliRun inspect = run_ember("inspect " + model);
  EXPECT_NE(inspect.out.find("-> Dense 16 gelu -> Dense 8 tanh -> Dense 8 silu -> Dense 8 sigmoid -> Dense 8 "
                             "leaky_relu -> Dense 8 gelu_tanh -> Dense 8 relu -> Dense 1;"),
            std::string::npos)
      << inspect.out;
  EXPECT_EQ(run_ember("predict --device cpu --model " + model + " --data " + data).exit_code, 0);
  expect_refused("train --device cpu --data " + data + " --target y --layers 16:swish",
                 "--layers 16:swish: '16:swish': unknown activation 'swish'; use one of linear, relu, leaky_relu, "
                 "gelu, gelu_tanh, silu, tanh, sigmoid; the form is WIDTH[:ACTIVATION]");
  EXPECT_NE(run_ember("train --help").out.find("gelu_tanh"), std::string::npos);
}

TEST(CliUsability, LayersTakeDropout) {
  const std::string data = good_csv(), model = dir() + "/dropout.safetensors";
  const CliRun train = run_ember("train --device cpu --epochs 3 --quiet --data " + data +
                                 " --target y --layers dropout:0.1,16,dropout:0.25,8:tanh --save " + model);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  const CliRun inspect = run_ember("inspect " + model);
  EXPECT_NE(inspect.out.find("-> Dropout(0.1) -> Dense 16 relu -> Dropout(0.25) -> Dense 8 tanh -> Dense 1;"),
            std::string::npos)
      << inspect.out;
  const CliRun json = run_ember("inspect --json " + model);
  EXPECT_NE(json.out.find("\"type\": \"dropout\",\n      \"rate\": 0.25\n"), std::string::npos) << json.out;
  // Predicting, Dropout passes its input on: the same predictions run after run.
  const CliRun first = run_ember("predict --device cpu --model " + model + " --data " + data);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(run_ember("predict --device cpu --model " + model + " --data " + data).out, first.out);
  for (const std::string bad : {"dropout:1", "dropout:-0.1"})
    expect_refused("train --device cpu --data " + data + " --target y --layers 16," + bad,
                   "'" + bad + "': a Dropout layer's rate must be 0 to below 1");
  for (const std::string bad : {"dropout:0.5x", "dropout:nan", "dropout:"})
    expect_refused("train --device cpu --data " + data + " --target y --layers 16," + bad,
                   "'" + bad + "': its rate '" + bad.substr(8) + "' is not a number; the form is dropout[:RATE]");
  expect_refused("train --device cpu --data " + data + " --target y --layers 16,dropout:0.1:2",
                 "'dropout:0.1:2': dropout takes 1 setting at most; the form is dropout[:RATE]");
  expect_refused("train --device cpu --data " + data + " --target y --layers 16,droput:0.1",
                 "'droput:0.1' is not a layer width or a kind of layer; the forms are WIDTH[:ACTIVATION], "
                 "dropout[:RATE], layernorm[:EPSILON], embedding:DIM or embedding:CATEGORIES:DIM[:COLUMNS], "
                 "batchnorm[:MOMENTUM[:EPSILON]]");
}

// The last input column of a table of whole numbers 0 to 3, read as categories.
TEST(CliUsability, LayersTakeAnEmbeddingFirst) {
  std::string text = "x,code,y\n";
  for (int r = 0; r < 80; ++r)
    text += std::to_string(r % 7) + "," + std::to_string(r % 4) + "," + std::to_string((r % 4) * 2 + r % 7) + "\n";
  const std::string data = file_with("codes.csv", text), model = dir() + "/embedding.safetensors";
  const CliRun train = run_ember("train --device cpu --epochs 3 --quiet --data " + data +
                                 " --target y --layers embedding:4:3:1,16 --save " + model);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  const CliRun inspect = run_ember("inspect " + model);
  EXPECT_NE(inspect.out.find("-> Embedding(4, 3, columns=1) -> Dense 16 relu -> Dense 1;"), std::string::npos)
      << inspect.out;
  const CliRun first = run_ember("predict --device cpu --model " + model + " --data " + data);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(run_ember("predict --device cpu --model " + model + " --data " + data).out, first.out);
  for (const std::string bad : {"embedding", "embedding:4:0"})
    expect_refused("train --device cpu --data " + data + " --target y --layers " + bad + ",16", "'" + bad + "': ");
  expect_refused("train --device cpu --data " + data + " --target y --layers embedding:4:3:1:1,16",
                 "an Embedding takes DIM (for the embedded columns) or CATEGORIES:DIM[:COLUMNS]; the form is "
                 "embedding:DIM or embedding:CATEGORIES:DIM[:COLUMNS]");
  expect_refused("train --device cpu --data " + data + " --target y --layers embedding:x:3,16",
                 "'x' is not a positive whole number");
  expect_refused("train --device cpu --data " + data + " --target y --layers embedding:4,16",
                 "Embedding(0, 4) is sized by the columns --embed names, and it names none");
  expect_refused("train --device cpu --data " + data + " --target y --layers embedding:3:2:1,16",
                 "row 4 column 2 is 3, not a category index");
  expect_refused("train --device cpu --data " + data + " --target y --layers 16,embedding:4:2",
                 "it must be the first layer, not layer 2");
}

// --embed: the city a learned vector per category (8 values unless --layers embedding:DIM says),
// its index the last input; the model predicts the raw rows by name.
TEST(CliUsability, EmbedGivesCategoriesLearnedVectors) {
  const std::string data = iris_csv(), model = dir() + "/embedded.safetensors";
  const CliRun train = run_ember("train --device cpu --epochs 3 --quiet --data " + data +
                                 " --target species --embed city --layers 16 --save " + model);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  const CliRun inspect = run_ember("inspect " + model);
  EXPECT_NE(inspect.out.find("Architecture: 4 inputs -> Embedding(3, 8, columns=1) -> Dense 16 relu"),
            std::string::npos)
      << inspect.out;
  EXPECT_NE(inspect.out.find("  city: embedded (2 categories: Lyon, Paris)"), std::string::npos) << inspect.out;
  const CliRun first = run_ember("predict --device cpu --model " + model + " --data " + data);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const CliRun sized = run_ember("train --device cpu --epochs 1 --quiet --data " + data +
                                 " --target species --embed city --layers embedding:4,16 --save " + model);
  ASSERT_EQ(sized.exit_code, 0) << sized.err;
  EXPECT_NE(run_ember("inspect " + model).out.find("-> Embedding(3, 4, columns=1) -> Dense 16"), std::string::npos);
  expect_refused(
      "train --device cpu --loss crossentropy --data " + data + " --target species --embed city --one-hot city",
      "column 'city' is named by both --one-hot and --embed; pick one");
  expect_refused("train --device cpu --loss crossentropy --data " + data + " --target species --embed town",
                 "no column named 'town'");
}

TEST(CliUsability, LayersTakeLayerNorm) {
  const std::string data = good_csv(), model = dir() + "/layernorm.safetensors";
  const CliRun train = run_ember("train --device cpu --epochs 3 --quiet --data " + data +
                                 " --target y --layers layernorm,16,layernorm:0.001,8:gelu --save " + model);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  const CliRun inspect = run_ember("inspect " + model);
  EXPECT_NE(inspect.out.find("-> LayerNorm(1e-05) -> Dense 16 relu -> LayerNorm(0.001) -> Dense 8 gelu -> Dense 1;"),
            std::string::npos)
      << inspect.out;
  const CliRun first = run_ember("predict --device cpu --model " + model + " --data " + data);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  for (const std::string bad : {"layernorm:0", "layernorm:-1", "layernorm:x", "layernorm:", "layernorm:inf"})
    expect_refused("train --device cpu --data " + data + " --target y --layers 16," + bad, "'" + bad + "': ");
}

// Every kind made from its settings alone, as the CLI knows it only through the library's parts:
// its spelling with the defaults and with its example's settings (tests/layers/), its description
// in inspect, a refused value and its line in --help.
TEST(CliUsability, LayersTakeEveryKindBySpelling) {
  const std::string data = good_csv(), help = run_ember("train --help").out;
  std::size_t covered = 0;
  for (const ember::LayerKind& kind : ember::layer_kinds()) {
    if (kind.settings.empty()) continue;  // spelled otherwise (Dense, Embedding): their own tests
    ++covered;
    SCOPED_TRACE(kind.name);
    const ember::Layer example = example_of(ember::make_layer(kind.name, {})).layer;
    std::string spelled = kind.name;
    for (const std::string& setting : kind.settings)
      spelled += fmt::format(":{}", ember::layer_setting(example, setting));
    const std::string model = dir() + "/" + kind.name + ".safetensors";
    const CliRun train = run_ember("train --device cpu --epochs 3 --quiet --data " + data +
                                   " --target y --layers 16:silu," + kind.name + ",8," + spelled + " --save " + model);
    ASSERT_EQ(train.exit_code, 0) << train.err;
    EXPECT_NE(run_ember("inspect " + model)
                  .out.find("-> Dense 16 silu -> " + ember::describe(ember::make_layer(kind.name, {})) +
                            " -> Dense 8 relu -> " + ember::describe(example) + " -> Dense 1;"),
              std::string::npos)
        << spelled;
    const CliRun first = run_ember("predict --device cpu --model " + model + " --data " + data);
    ASSERT_EQ(first.exit_code, 0) << first.err;
    EXPECT_EQ(run_ember("predict --device cpu --model " + model + " --data " + data).out, first.out);
    expect_refused("train --device cpu --data " + data + " --target y --layers 16," + kind.name + ":x",
                   "'" + kind.name + ":x': ");
    expect_refused("train --device cpu --data " + data + " --target y --layers 16," + kind.name + ":x",
                   "; the form is " + kind.form);
    EXPECT_NE(help.find(kind.form + ": " + kind.meaning.substr(0, 20)), std::string::npos);
  }
  EXPECT_GE(covered, 4u);  // at least Dropout, LayerNorm, BatchNorm and RMSNorm
}

TEST(CliUsability, LayersTakeBatchNorm) {
  const std::string data = good_csv(), model = dir() + "/batchnorm.safetensors";
  const CliRun train = run_ember("train --device cpu --epochs 3 --quiet --data " + data +
                                 " --target y --layers 16,batchnorm,8:gelu,batchnorm:0.01:0.001 --save " + model);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  const CliRun inspect = run_ember("inspect " + model);
  EXPECT_NE(inspect.out.find("-> Dense 16 relu -> BatchNorm(momentum=0.1, epsilon=1e-05) -> Dense 8 gelu -> "
                             "BatchNorm(momentum=0.01, epsilon=0.001) -> Dense 1;"),
            std::string::npos)
      << inspect.out;
  // Predicting reads the running figures: a row's prediction is its own, whatever rows share its batch.
  const CliRun first = run_ember("predict --device cpu --model " + model + " --data " + data);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(run_ember("predict --device cpu --model " + model + " --data " + data).out, first.out);
  for (const std::string bad : {"batchnorm:2", "batchnorm:-0.1", "batchnorm:x", "batchnorm:0.1:0", "batchnorm:0.1:"})
    expect_refused("train --device cpu --data " + data + " --target y --layers 16," + bad, "'" + bad + "': ");
}

TEST(CliUsability, ClipNormIsKeptAndShown) {
  const std::string data = good_csv(), model = dir() + "/clipped.safetensors";
  ASSERT_EQ(
      run_ember("train --device cpu --epochs 2 --quiet --clip-norm 0.5 --data " + data + " --target y --save " + model)
          .exit_code,
      0);
  EXPECT_NE(run_ember("inspect " + model).out.find("Gradients: clipped to norm 0.5\n"), std::string::npos);
  // Resumed, the model keeps its bound unless the flag changes it.
  const std::string resumed = dir() + "/resumed.safetensors";
  ASSERT_EQ(run_ember("train --device cpu --epochs 3 --quiet --init " + model + " --data " + data +
                      " --target y --save " + resumed)
                .exit_code,
            0);
  EXPECT_NE(run_ember("inspect --json " + resumed).out.find("\"clip_norm\": 0.5"), std::string::npos);
  for (const std::string bad : {"-1", "nan"})
    expect_refused("train --device cpu --data " + data + " --target y --clip-norm " + bad,
                   "--clip-norm must be 0 (off) or a positive number");
  expect_refused("train --device cpu --data " + data + " --target y --clip-norm inf",
                 "--clip-norm must be 0 (off) or a positive number");
}

TEST(CliUsability, LabelSmoothingForClassifiers) {
  const std::string iris = iris_csv(), model = dir() + "/smoothed.safetensors";
  // The classifier is inferred from the text labels; the flag waits for that.
  const CliRun train = run_ember("train --device cpu --epochs 3 --quiet --label-smoothing 0.1 --missing mean --data " +
                                 iris + " --target species --save " + model);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  EXPECT_NE(run_ember("inspect " + model).out.find("Loss: crossentropy (label_smoothing 0.1)"), std::string::npos);
  expect_refused("train --device cpu --data " + good_csv() + " --target y --label-smoothing 0.1",
                 "--label-smoothing applies to classification (--loss crossentropy)");
  expect_refused("train --device cpu --data " + good_csv() + " --target y --loss mse --label-smoothing 0.1",
                 "--label-smoothing applies to --loss crossentropy, not mse");
  expect_refused("train --device cpu --missing mean --data " + iris + " --target species --label-smoothing 1",
                 "--label-smoothing 1: must be in [0, 1)");
}

TEST(CliUsability, InspectShowsWhatTheCheckpointHolds) {
  const std::string iris = iris_csv(), model = dir() + "/iris.safetensors";
  ASSERT_EQ(run_ember("train --device cpu --epochs 3 --quiet --layers 8 --loss crossentropy --optimizer adam "
                      "--schedule cosine --val-split 0.2 --one-hot city --missing mean --data " +
                      iris + " --target species --save " + model)
                .exit_code,
            0);
  const CliRun text = run_ember("inspect " + model);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const std::string part :
       {"an Ember model for classification", "Architecture: 4 inputs -> Dense 8 relu -> Dense 3; 67 parameters",
        "Columns (3 features; a missing cell: mean):", "  city: one-hot (2 categories: Lyon, Paris)", "Target: species",
        "Classes (3): setosa, versicolor, virginica", "Loss: crossentropy",
        "Optimizer: adam (lr 0.001, beta1 0.9, beta2 0.999, eps 1e-08, weight_decay 0)",
        "Schedule: cosine (epochs 3, warmup_epochs 0, min_scale 0)", "Epochs trained: 3", "Figures at epoch 3: loss "})
    EXPECT_NE(text.out.find(part), std::string::npos) << part << "\n" << text.out;

  const CliRun json = run_ember("inspect --json " + model);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const nlohmann::json m = nlohmann::json::parse(json.out);
  EXPECT_EQ(m["task"], "classification");
  EXPECT_EQ(m["classes"], nlohmann::json::array({"setosa", "versicolor", "virginica"}));
  EXPECT_EQ(m["columns"][2]["categories"], nlohmann::json::array({"Lyon", "Paris"}));
  EXPECT_EQ(m["columns"][1]["fill"].size(), 1u);
  EXPECT_EQ(m["optimizer"]["type"], "adam");
  EXPECT_EQ(m["epochs"], 3);
  EXPECT_EQ(m["figures"]["epoch"], 3);
  EXPECT_TRUE(m["figures"].contains("val_accuracy")) << json.out;
  expect_refused("inspect " + dir() + "/none.safetensors", "cannot open the checkpoint");
}

}  // namespace
