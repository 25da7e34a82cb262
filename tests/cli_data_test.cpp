// The real `ember` binary on CSV files as they come from spreadsheets and databases: byte-order
// marks, id and text columns, categories, missing values, other delimiters, standard input; the
// figures it prints; and the flags it refuses.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "cli_support.hpp"
#include "ember/backend.hpp"

namespace {

using namespace ember::testing;
namespace fs = std::filesystem;

/// id (text), city, x with gaps, y: what a database export looks like.
std::string city_csv(const std::string& name, int rows, const char* last_city = "Nice") {
  const char* cities[] = {"Paris", "Lyon", last_city};
  std::string text = "id,city,x,y\n";
  for (int i = 0; i < rows; ++i) {
    const double x = (i % 11) * 0.2;
    text += "cust_" + std::to_string(i) + "," + cities[i % 3] + "," + (i % 7 == 3 ? "" : std::to_string(x)) + "," +
            std::to_string(x + 3.0 * (i % 3)) + "\n";
  }
  return file_with(name, text);
}

TEST(CliData, ByteOrderMarkFilesTrainAndPredictLikePlainOnes) {
  const std::string plain = good_csv(), bom = file_with("bom.csv", "\xEF\xBB\xBF" + slurp(plain));
  const std::string from_bom = dir() + "/bom.safetensors", from_plain = dir() + "/plain.safetensors";
  ASSERT_EQ(
      run_ember("train --device cpu --quiet --epochs 3 --data " + bom + " --target x0 --save " + from_bom).exit_code,
      0);
  ASSERT_EQ(run_ember("train --device cpu --quiet --epochs 3 --data " + plain + " --target x0 --save " + from_plain)
                .exit_code,
            0);
  EXPECT_EQ(slurp(from_bom), slurp(from_plain));  // the same column names, weights and scaler
  const CliRun on_plain = run_ember("predict --device cpu --model " + from_bom + " --data " + plain);
  const CliRun on_bom = run_ember("predict --device cpu --model " + from_plain + " --data " + bom);
  ASSERT_EQ(on_plain.exit_code, 0) << on_plain.err;
  ASSERT_EQ(on_bom.exit_code, 0) << on_bom.err;
  EXPECT_EQ(on_plain.out, on_bom.out);
  EXPECT_EQ(on_plain.out.substr(0, 13), "x0_predicted\n");
}

TEST(CliData, IdsCitiesAndGapsTrainAndPredictOnUnseenCategories) {
  const std::string data = city_csv("cities.csv", 90), model = dir() + "/cities.safetensors";
  const CliRun train = run_ember("train --device cpu --epochs 20 --layers 8 --val-split 0.2 --data " + data +
                                 " --target y --ignore id --one-hot city --missing mean --save " + model);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  EXPECT_NE(train.out.find("Training on cpu: 72 training rows, 18 held out for validation; 2 features (4 inputs), 1 "
                           "target, "),
            std::string::npos)
      << train.out;
  EXPECT_NE(train.out.find("- r2: "), std::string::npos) << train.out;
  EXPECT_NE(train.out.find("- val_r2: "), std::string::npos) << train.out;

  // New rows: Berlin was never seen; the id column is text and the target column is empty: neither is read.
  const std::string fresh = file_with(
      "fresh.csv", "id,city,x,y,comment\nnew_1,Berlin,0.4,,\"free, text\"\nnew_2,Lyon,,,\nnew_3,Berlin,1,,x\n");
  const CliRun predict = run_ember("predict --device cpu --model " + model + " --data " + fresh + " --keep id");
  ASSERT_EQ(predict.exit_code, 0) << predict.err;
  EXPECT_EQ(predict.out.substr(0, 15), "id,y_predicted\n");
  EXPECT_NE(predict.out.find("\nnew_2,"), std::string::npos) << predict.out;
  EXPECT_EQ(std::count(predict.out.begin(), predict.out.end(), '\n'), 4);
  EXPECT_NE(predict.err.find("warning: " + fresh +
                             ": column 'city': 2 rows hold a category that training never saw (Berlin); their "
                             "indicators are all zero"),
            std::string::npos)
      << predict.err;

  const std::string metrics = dir() + "/metrics.json";
  const CliRun evaluate =
      run_ember("evaluate --device cpu --model " + model + " --data " + data + " --metrics-out " + metrics);
  ASSERT_EQ(evaluate.exit_code, 0) << evaluate.err;
  EXPECT_NE(evaluate.out.find("rows: 90"), std::string::npos) << evaluate.out;
  EXPECT_NE(slurp(metrics).find("\"targets\": {\n    \"y\": {"), std::string::npos) << slurp(metrics);
  // Resuming keeps the column handling without repeating the flags; contradicting it is refused.
  const CliRun resumed =
      run_ember("train --device cpu --epochs 1 --quiet --data " + data + " --target y --init " + model);
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  expect_input_error("train --device cpu --epochs 1 --data " + data + " --target y --init " + model + " --missing drop",
                     "the model was trained with --missing mean, not drop");
}

TEST(CliData, BinsAreKeptShownAndNotContradicted) {
  const std::string data = city_csv("binned.csv", 90), model = dir() + "/binned.safetensors";
  const CliRun train = run_ember("train --device cpu --epochs 3 --layers 8 --bins 4 --data " + data +
                                 " --target y --ignore id --save " + model);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  // city: 3 categories; x: its value, 4 bins and a gap indicator.
  EXPECT_NE(train.out.find("2 features (9 inputs)"), std::string::npos) << train.out;
  const CliRun inspect = run_ember("inspect " + model);
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_NE(inspect.out.find("x: number; 4 bins between "), std::string::npos) << inspect.out;
  // Resuming keeps the bins without the flag; another count is refused, as are 1 and more than 256.
  EXPECT_EQ(run_ember("train --device cpu --epochs 4 --quiet --data " + data + " --target y --init " + model).exit_code,
            0);
  expect_input_error("train --device cpu --epochs 5 --data " + data + " --target y --init " + model + " --bins 6",
                     "the model was trained with --bins 4, not 6");
  expect_input_error("train --data " + data + " --target y --bins 1", "--bins is 1; use 0 (off) or 2 to 256");
  expect_input_error("train --data " + data + " --target y --bins 257", "--bins is 257; use 0 (off) or 2 to 256");
}

TEST(CliData, MissingValuesDropOrRefuse) {
  const std::string data = city_csv("cities.csv", 70), model = dir() + "/dropped.safetensors";
  const CliRun train = run_ember("train --device cpu --epochs 2 --data " + data +
                                 " --target y --ignore id --one-hot city --missing drop --save " + model);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  EXPECT_NE(train.out.find("60 training rows, 10 dropped for missing values"), std::string::npos) << train.out;
  const std::string fresh = file_with("fresh.csv", "city,x\nLyon,1\nNice,NA\n");
  const CliRun predict = run_ember("predict --device cpu --model " + model + " --data " + fresh);
  ASSERT_EQ(predict.exit_code, 0) << predict.err;
  EXPECT_EQ(predict.out.substr(predict.out.rfind('\n', predict.out.size() - 2)), "\n\n");  // no prediction
  EXPECT_NE(predict.err.find("1 row with a missing feature has no prediction"), std::string::npos) << predict.err;
  expect_input_error("train --device cpu --data " + data + " --target y --ignore id --one-hot city --missing error",
                     data + ":5:3 (column 'x'): missing value");
  expect_input_error("train --device cpu --data " + data + " --target y --one-hot city --numeric id",
                     data +
                         ":2:1 (column 'id'): 'cust_0' is not a number; if the column holds ids or text, leave it "
                         "out with --ignore id or encode its values as categories with --one-hot id");
}

TEST(CliData, StandardInputAndDelimiterHints) {
  const std::string data = good_csv();
  const CliRun piped = run_ember("train --device cpu --epochs 2 --quiet --data - --target y", data);
  EXPECT_EQ(piped.exit_code, 0) << piped.err;
  const std::string model = dir() + "/m.safetensors";
  ASSERT_EQ(run_ember("train --device cpu --epochs 2 --quiet --data " + data + " --target y --save " + model).exit_code,
            0);
  const CliRun predicted = run_ember("predict --device cpu --model " + model + " --data -", data);
  EXPECT_EQ(predicted.exit_code, 0) << predicted.err;
  EXPECT_EQ(predicted.out, run_ember("predict --device cpu --model " + model + " --data " + data).out);

  const std::string semicolons = file_with("semi.csv", "x1;x2;y\n1,5;2,5;3\n2,5;1;4\n");
  expect_input_error("train --device cpu --data " + semicolons + " --target y",
                     semicolons +
                         ":2: 3 fields, but the header has 1; every row needs one value per column; the "
                         "header is one field holding ';': the file looks ';'-separated, so use --delimiter ;");
  expect_input_error("train --device cpu --delimiter ';' --data " + semicolons + " --target y",
                     semicolons + ":2:1 (column 'x1'): '1,5' is not a number (it has a decimal comma");
}

TEST(CliData, FiguresPerTargetAndLabelWarning) {
  std::string text = "a,b,p,q\n";
  for (int i = 0; i < 40; ++i)
    text += std::to_string(i % 5) + "," + std::to_string(i % 3) + "," + std::to_string(i % 5 + 0.5 * (i % 3)) + "," +
            std::to_string(i % 2) + "\n";
  const std::string data = file_with("two.csv", text), model = dir() + "/two.safetensors", history = dir() + "/h.csv";
  const CliRun train = run_ember("train --device cpu --epochs 3 --data " + data + " --target p,q --save " + model +
                                 " --history " + history + " --val-split 0.25");
  ASSERT_EQ(train.exit_code, 0) << train.err;
  EXPECT_NE(train.err.find("warning: " + data +
                           ": target column 'q' holds only the values 0, 1: if these are class "
                           "labels, note that it is trained as regression"),
            std::string::npos)
      << train.err;
  // The hint names the command line's flag for a classifier, not the library's type.
  EXPECT_NE(train.err.find("to train a classifier on its labels, use --loss crossentropy"), std::string::npos)
      << train.err;
  EXPECT_EQ(train.err.find("'p' holds only"), std::string::npos) << "p is not whole: " << train.err;
  EXPECT_NE(train.out.find("; 2 features, 2 targets,"), std::string::npos) << train.out;
  EXPECT_NE(slurp(history).find("epoch,loss,mae,r2,val_loss,val_mae,val_r2,lr,seconds\n1,"), std::string::npos);
  const CliRun evaluate = run_ember("evaluate --device cpu --model " + model + " --data " + data);
  ASSERT_EQ(evaluate.exit_code, 0) << evaluate.err;
  EXPECT_NE(evaluate.out.find("\np: mse "), std::string::npos) << evaluate.out;
  EXPECT_NE(evaluate.out.find("\nq: mse "), std::string::npos) << evaluate.out;
}

TEST(CliData, RefusedFlagsNameWhatWasTyped) {
  const std::string data = good_csv();
  expect_input_error("train --data " + data + " --target y --layers 64,,64", "--layers 64,,64: an empty item");
  expect_input_error("train --data " + data + " --target y,", "--target y,: an empty item");
  expect_input_error("train --data " + data + " --target y --ignore ,x0", "--ignore ,x0: an empty item");
  expect_input_error("train --data " + data + " --target y --seed -1", "--seed -1: must be a whole number from 0 to");
  expect_input_error("train --data " + data + " --target y --missing zero",
                     "--missing zero: use fill, error, drop or mean");
  expect_input_error("train --data " + data + " --target y --device TPU", "--device TPU: unknown device");
  expect_input_error("train --data " + data + " --target y --ignore x9", data + ": no column named 'x9' to skip");
  expect_input_error("train --data " + data + " --target y --one-hot y", "--one-hot y: 'y' is a target column");
  if (!ember::cuda_unavailable_reason().empty())
    expect_input_error("train --data " + data + " --target y --device GPU", "--device GPU: no usable GPU");
  const std::string model = dir() + "/m.safetensors";
  ASSERT_EQ(run_ember("train --device CPU --epochs 1 --quiet --data " + data + " --target y --save " + model).exit_code,
            0);
  expect_input_error("predict --model " + model + " --data " + data + " --keep y_predicted",
                     "--keep y_predicted: the predictions are written under that name");

  const CliRun diverged = run_ember("train --device cpu --data " + data + " --target y --epochs 50 --momentum 1.5");
  EXPECT_EQ(diverged.exit_code, 3) << diverged.err;
  EXPECT_NE(diverged.err.find("momentum 1.5 is >= 1, which makes every update grow: use --momentum below 1"),
            std::string::npos)
      << diverged.err;
}

TEST(CliData, CpuNoticeAtMostOnceAndNeverWhenQuiet) {
  if (ember::cuda_unavailable_reason().empty()) GTEST_SKIP() << "a GPU is usable: there is no CPU fallback notice";
  const std::string data = good_csv();
  const CliRun loud = run_ember("train --epochs 1 --data " + data + " --target y");
  EXPECT_EQ(loud.exit_code, 0) << loud.err;
  const auto first = loud.err.find("note: no usable GPU");
  EXPECT_NE(first, std::string::npos) << loud.err;
  EXPECT_EQ(loud.err.find("note: no usable GPU", first + 1), std::string::npos) << loud.err;
  const CliRun quiet = run_ember("train --quiet --epochs 1 --data " + data + " --target y");
  EXPECT_EQ(quiet.err, "");
  const CliRun cpu = run_ember("train --device cpu --epochs 1 --data " + data + " --target y");
  EXPECT_EQ(cpu.err.find("note: no usable GPU"), std::string::npos) << cpu.err;
}

TEST(CliData, ClassificationEndToEnd) {
  std::string text = "petal,sepal,species\n";
  const char* names[] = {"setosa", "versicolor", "virginica"};
  for (int i = 0; i < 150; ++i)
    text +=
        std::to_string(3 * (i % 3) + 0.1 * (i % 7)) + "," + std::to_string((i % 5) * 0.2) + "," + names[i % 3] + "\n";
  const std::string data = file_with("iris.csv", text), model = dir() + "/iris.safetensors", history = dir() + "/h.csv";
  const CliRun train = run_ember(
      "train --device cpu --loss crossentropy --optimizer adam --lr 0.02 --epochs 30 --layers 8 "
      "--val-split 0.2 --data " +
      data + " --target species --save " + model + " --history " + history);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  EXPECT_NE(train.out.find("; 2 features, target 'species' with 3 classes,"), std::string::npos) << train.out;
  EXPECT_NE(train.out.find(" - accuracy: "), std::string::npos) << train.out;
  EXPECT_NE(slurp(history).find("epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n1,"), std::string::npos);

  const CliRun predict = run_ember("predict --device cpu --model " + model + " --data " + data);
  ASSERT_EQ(predict.exit_code, 0) << predict.err;
  EXPECT_EQ(
      predict.out.substr(0, predict.out.find('\n')),
      "species_predicted,species_probability_setosa,species_probability_versicolor,species_probability_virginica");
  EXPECT_EQ(predict.out.substr(predict.out.find('\n') + 1, 7), "setosa,");

  const std::string metrics = dir() + "/metrics.json";
  const CliRun evaluate =
      run_ember("evaluate --device cpu --model " + model + " --data " + data + " --metrics-out " + metrics);
  ASSERT_EQ(evaluate.exit_code, 0) << evaluate.err;
  EXPECT_NE(evaluate.out.find("accuracy: 1.000000\n"), std::string::npos) << evaluate.out;
  EXPECT_NE(evaluate.out.find("confusion (rows: true class, columns: predicted):"), std::string::npos);
  EXPECT_NE(slurp(metrics).find("\"confusion\": [\n    [\n      50,\n      0,\n      0\n    ],"), std::string::npos)
      << slurp(metrics);

  const std::string unseen = file_with("unseen.csv", "petal,sepal,species\n1,2,daisy\n");
  expect_input_error("evaluate --device cpu --model " + model + " --data " + unseen,
                     unseen + ":2:3 (column 'species'): 'daisy' is not one of the model's classes");
  EXPECT_EQ(run_ember("predict --device cpu --model " + model + " --data " + unseen).exit_code, 0);
  expect_input_error("train --device cpu --data " + data + " --target species --init " + model + " --loss mse",
                     "--loss mse: the model in --init was trained with crossentropy");
  expect_input_error("train --device cpu --data " + data + " --target species --loss huber --huber-delta 0",
                     "--huber-delta 0: must be a finite number > 0");
  expect_input_error("train --device cpu --data " + data + " --target petal --huber-delta 2",
                     "--huber-delta applies to --loss huber, not mse");
  expect_input_error("train --device cpu --data " + data + " --target species --loss hinge",
                     "--loss 'hinge' is not a loss; the forms are mse, huber[:DELTA], ");
  // A loss's settings in its spelling, as --layers spells a layer's; a flag may not give one twice.
  const std::string huber = dir() + "/huber.safetensors";
  const CliRun spelled = run_ember("train --device cpu --quiet --epochs 2 --data " + data +
                                   " --target petal --loss huber:0.25 --save " + huber);
  ASSERT_EQ(spelled.exit_code, 0) << spelled.err;
  const std::string stored = run_ember("inspect " + huber + " --json").out;
  EXPECT_NE(stored.find("\"loss\": {\n    \"type\": \"huber\",\n    \"delta\": 0.25\n  }"), std::string::npos)
      << stored;
  // --init keeps the stored delta where --loss names the kind without one.
  const CliRun resumed = run_ember("train --device cpu --quiet --epochs 3 --data " + data +
                                   " --target petal --loss huber --init " + huber + " --save " + huber);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(run_ember("inspect " + huber + " --json").out.find("\"delta\": 0.25"), std::string::npos);
  expect_input_error("train --device cpu --data " + data + " --target petal --loss huber:0.5 --huber-delta 2",
                     "--loss huber:0.5 and --huber-delta both give delta; give one");
  expect_input_error("train --device cpu --data " + data + " --target petal --loss huber:wide",
                     "--loss 'huber:wide': its delta 'wide' is not a number; the form is huber[:DELTA]");
  expect_input_error("train --device cpu --data " + data + " --target petal --loss mae:1",
                     "--loss 'mae:1': too many values; the form is mae");
  const CliRun median =
      run_ember("train --device cpu --quiet --epochs 2 --data " + data + " --target petal --loss mae");
  EXPECT_EQ(median.exit_code, 0) << median.err;
  expect_input_error("train --device cpu --data " + data + " --target petal,sepal --loss crossentropy",
                     "classification takes one target column, not petal, sepal");
}

TEST(CliData, SchedulesEarlyStoppingAndPeriodicCheckpoints) {
  const std::string data = good_csv(), model = dir() + "/m.safetensors", history = dir() + "/h.csv";
  const CliRun step = run_ember(
      "train --device cpu --quiet --epochs 4 --schedule step --step-epochs 2 --decay 0.5 "
      "--lr 0.04 --data " +
      data + " --target y --history " + history);
  ASSERT_EQ(step.exit_code, 0) << step.err;
  const std::string rows = slurp(history);
  EXPECT_NE(rows.find(",0.04,"), std::string::npos) << rows;
  EXPECT_NE(rows.find(",0.02,"), std::string::npos) << rows;
  EXPECT_EQ(rows.find(",0.01,"), std::string::npos) << rows;

  const CliRun early = run_ember(
      "train --device cpu --epochs 500 --layers 64,64 --optimizer adam --lr 0.01 "
      "--val-split 0.3 --early-stopping 3 --data " +
      data + " --target y --save " + model + " --checkpoint-every 5");
  ASSERT_EQ(early.exit_code, 0) << early.err;
  EXPECT_NE(early.out.find("(early stopping); epoch "), std::string::npos) << early.out;
  EXPECT_NE(early.out.find("Best epoch: "), std::string::npos) << early.out;

  expect_input_error("train --data " + data + " --target y --checkpoint-every 2",
                     "--checkpoint-every needs --save FILE");
  expect_input_error("train --data " + data + " --target y --schedule cosine --decay 0.5",
                     "--decay applies to --schedule step or plateau, not cosine");
  expect_input_error("train --data " + data + " --target y --schedule step --decay 2", "--decay 2: must be in (0, 1]");
  expect_input_error("train --data " + data + " --target y --schedule sawtooth", "--schedule sawtooth: use constant");
  expect_input_error("train --data " + data + " --target y --min-delta 0.1",
                     "--min-delta and --no-restore-best go with");
}

TEST(CliData, ValDataValidatesOnAnotherFileAsTheLastRowsOfOne) {
  // The 40 rows of good.csv: the first 30 to train on, the last 10 in their own file.
  const std::string all = slurp(good_csv());
  std::vector<std::string> lines;
  for (std::size_t start = 0, end; (end = all.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(all.substr(start, end - start + 1));
  std::string train = lines[0], validation = lines[0];
  for (std::size_t i = 1; i < lines.size(); ++i) (i <= 30 ? train : validation) += lines[i];
  const std::string train_path = file_with("train.csv", train), validation_path = file_with("val.csv", validation);
  const std::string flags = " --device cpu --epochs 3 --early-stopping 0 --target y --history ";
  const CliRun given =
      run_ember("train --data " + train_path + " --val-data " + validation_path + flags + dir() + "/given.csv");
  ASSERT_EQ(given.exit_code, 0) << given.err;
  EXPECT_NE(given.out.find("30 training rows, 10 to validate on from " + validation_path), std::string::npos)
      << given.out;
  const CliRun split = run_ember("train --data " + good_csv() + " --val-split 0.25 --val-last --no-shuffle" + flags +
                                 dir() + "/split.csv");
  ASSERT_EQ(split.exit_code, 0) << split.err;
  const CliRun unshuffled = run_ember("train --data " + train_path + " --val-data " + validation_path +
                                      " --no-shuffle" + flags + dir() + "/given.csv");
  ASSERT_EQ(unshuffled.exit_code, 0) << unshuffled.err;
  // The same figures, validation included, but the seconds.
  const auto figures = [](std::string text) {
    std::string out;
    for (std::size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
      const std::string line = text.substr(start, end - start);
      out += line.substr(0, line.rfind(',')) + "\n";
    }
    return out;
  };
  EXPECT_EQ(figures(slurp(dir() + "/given.csv")), figures(slurp(dir() + "/split.csv")));
  expect_input_error("train --data " + train_path + " --val-data " + validation_path + " --target y --val-split 0.2",
                     "--val-data FILE gives the rows to validate on");
  expect_input_error("train --data " + train_path + " --val-data " + dir() + "/none.csv --target y",
                     dir() + "/none.csv");
}

TEST(CliData, InterruptWritesTheCompletedEpochsAndRepeatingTheCommandFinishesTheRun) {
  // 20000 rows, 30 epochs: long enough to interrupt, short enough to run to its end. SIGINT after
  // the first epoch's line; then the same command with --init must give the uninterrupted run's
  // model bit for bit (--epochs is the epoch to train up to; cosine schedule, Adam's state).
  std::string text = "a,b,c,y\n";
  for (int i = 0; i < 20000; ++i)
    text += std::to_string(i % 13) + "," + std::to_string(i % 7) + "," + std::to_string(i % 5) + "," +
            std::to_string(i % 13 + 2 * (i % 7)) + "\n";
  const std::string data = file_with("big.csv", text), model = dir() + "/interrupted.safetensors",
                    history = dir() + "/history.csv", whole = dir() + "/whole.safetensors";
  const std::string command =
      "train --device cpu --epochs 30 --layers 32 --optimizer adam --schedule cosine "
      "--val-split 0.1 --progress lines --data " +
      data + " --target y --history " + history + " --save ";
  std::filesystem::remove(model);
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t child = fork();
  if (child == 0) {
    dup2(out[1], 1);
    close(out[0]);
    execl("/bin/sh", "sh", "-c", ("exec " + std::string(EMBER_CLI_PATH) + " " + command + model).c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string seen;
  char buffer[4096];
  while (seen.find("Epoch 1/30") == std::string::npos) {
    const ssize_t n = read(out[0], buffer, sizeof(buffer));
    ASSERT_GT(n, 0) << seen;
    seen.append(buffer, static_cast<std::size_t>(n));
  }
  kill(child, SIGINT);
  int status = 0;
  waitpid(child, &status, 0);
  close(out[0]);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  ASSERT_TRUE(std::filesystem::exists(model));
  const std::string rows = slurp(history);
  const auto epochs = std::count(rows.begin(), rows.end(), '\n') - 1;
  ASSERT_GE(epochs, 1) << rows;
  ASSERT_LT(epochs, 30) << rows;

  // The checkpoint holds exactly the epochs the history lists; the repeated command trains the rest.
  const CliRun resumed = run_ember(command + model + " --init " + model);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find(fmt::format("Resuming at epoch {}: {} epochs to go, up to epoch 30", epochs, 30 - epochs)),
            std::string::npos)
      << resumed.out;
  EXPECT_NE(resumed.out.find(fmt::format("Epoch {}/30", epochs + 1)), std::string::npos) << resumed.out;
  EXPECT_NE(resumed.out.find("Epoch 30/30"), std::string::npos) << resumed.out;
  ASSERT_EQ(run_ember(command + whole).exit_code, 0);
  const CliRun a = run_ember("predict --device cpu --model " + model + " --data " + data);
  const CliRun b = run_ember("predict --device cpu --model " + whole + " --data " + data);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_TRUE(a.out == b.out) << "the resumed run's predictions differ from the uninterrupted run's";

  // At or past --epochs, nothing is trained, and the note says why.
  const CliRun done = run_ember(command + model + " --init " + model);
  ASSERT_EQ(done.exit_code, 0) << done.err;
  EXPECT_NE(done.err.find("note: the model in --init is at epoch 30, already at --epochs 30: nothing to train"),
            std::string::npos)
      << done.err;
  EXPECT_EQ(done.out.find("Epoch 31"), std::string::npos) << done.out;
}

TEST(CliData, HelpSaysWhatInitOverrides) {
  const CliRun help = run_ember("train --help");
  EXPECT_NE(help.out.find("With --init, the architecture, loss, optimizer and its settings"), std::string::npos)
      << help.out;
  for (const std::string flag : {"--ignore", "--one-hot", "--missing", "--data"})
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
  EXPECT_NE(run_ember("predict --help").out.find("--keep"), std::string::npos);
}

}  // namespace

namespace ember {
namespace {

TEST(CliWeight, AWeightColumnWeighsTheRowsAndIsNoFeature) {
  // Weights 0 to 3 against the rows repeated as often; weights of 1 against no weights at all.
  std::string weighted = "a,b,w,y\n", repeated = "a,b,y\n", ones = "a,b,w,y\n";
  for (int i = 0; i < 40; ++i) {
    const std::string a = std::to_string(i % 7), b = std::to_string((i * 5) % 11), y = std::to_string(i % 7 + i % 3);
    const int weight = i % 4;
    weighted += a + "," + b + "," + std::to_string(weight) + "," + y + "\n";
    ones += a + "," + b + ",1," + y + "\n";
    for (int k = 0; k < weight; ++k) repeated += a + "," + b + "," + y + "\n";
  }
  const std::string flags =
      " --device cpu --target y --epochs 15 --val-split 0 --batch-size 1000 --no-shuffle "
      "--no-normalize --optimizer sgd --lr 0.01 --quiet --save ";
  const auto train = [&](const std::string& data, const std::string& more, const std::string& name) {
    const CliRun run = run_ember("train --data " + file_with(name + ".csv", data) + more + flags + dir() + "/" + name +
                                 ".safetensors");
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return Sequential::load(dir() + "/" + name + ".safetensors");
  };
  const Sequential by_weight = train(weighted, " --weight w", "weighted");
  const Sequential by_copies = train(repeated, "", "repeated");
  EXPECT_EQ(by_weight.feature_names(), (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(by_weight.parameters().size(), by_copies.parameters().size());
  for (std::size_t i = 0; i < by_weight.parameters().size(); ++i)
    EXPECT_NEAR(by_weight.parameters()[i], by_copies.parameters()[i], 2e-5) << i;
  EXPECT_EQ(train(ones, " --weight w", "ones").parameters(), train(ones, " --ignore w", "ignored").parameters());

  // The model predicts files without the weight column.
  const CliRun predicted = run_ember("predict --device cpu --quiet --model " + dir() + "/weighted.safetensors --data " +
                                     dir() + "/repeated.csv --out " + dir() + "/predicted.csv");
  EXPECT_EQ(predicted.exit_code, 0) << predicted.err;

  const std::string bad = file_with("bad.csv", "a,w,y\n1,1,2\n2,,3\n3,-1,4\n4,x,5\n");
  expect_input_error("train --data " + bad + " --target y --weight w", bad + ":3:2 (column 'w'): no weight");
  const std::string negative = file_with("negative.csv", "a,w,y\n1,1,2\n3,-1,4\n");
  expect_input_error("train --data " + negative + " --target y --weight w",
                     negative + ":3:2 (column 'w'): the weight '-1' is not a number of 0 or more");
  const std::string text = file_with("text.csv", "a,w,y\n1,1,2\n4,x,5\n");
  expect_input_error("train --data " + text + " --target y --weight w",
                     text + ":3:2 (column 'w'): the weight 'x' is not a number of 0 or more");
  expect_input_error("train --data " + text + " --target y --weight y", "--weight y is a --target");
  expect_input_error("train --data " + text + " --target y --weight nope",
                     text + ": no column named 'nope' for --weight");
}

}  // namespace
}  // namespace ember
