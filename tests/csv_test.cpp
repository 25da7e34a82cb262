// CSV parsing (RFC 4180): number and text columns, missing cells, skipped columns, and the error
// messages (file, line, column, a hint where the file looks like it uses another delimiter).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "ember/data.hpp"
#include "ember/error.hpp"
#include "test_support.hpp"

namespace ember {
namespace {

std::string error_of(const std::string& text, CsvOptions options = {}) {
  try {
    parse_csv(text, "f.csv", options);
  } catch (const InputError& error) {
    return error.what();
  }
  return "no error";
}

std::string split_error(const std::string& text, const std::vector<std::string>& targets) {
  try {
    split_features_targets(parse_csv(text, "f.csv"), targets);
  } catch (const InputError& error) {
    return error.what();
  }
  return "no error";
}

TEST(Csv, ParsesQuotedFieldsCrlfAndBlankLines) {
  const CsvTable table = parse_csv("a,\"b \"\"x\"\"\",\"c\nd\"\r\n1,2,3\r\n\r\n\"4\", 5 ,6e-1\n", "f.csv");
  EXPECT_EQ(table.names(), (std::vector<std::string>{"a", "b \"x\"", "c\nd"}));
  EXPECT_EQ(split_features_targets(table, {"a"}).x, (Matrix{{2, 3}, {5, 0.6f}}));
  EXPECT_EQ(table.line_of_row[0], 3);  // the header spans lines 1-2
  EXPECT_EQ(table.line_of_row[1], 5);
}

TEST(Csv, OtherDelimiter) {
  const CsvTable table = parse_csv("a;b\n1;2\n", "f.csv", {.delimiter = ';'});
  EXPECT_EQ(table.columns[1].numbers, std::vector<float>{2});
}

TEST(Csv, ByteOrderMarkIsSkipped) {
  const CsvTable table = parse_csv("\xEF\xBB\xBFx1,y\n1,2\n", "f.csv");
  EXPECT_EQ(table.names(), (std::vector<std::string>{"x1", "y"}));
  EXPECT_EQ(table.column_index("x1"), 0);
  EXPECT_EQ(error_of("\xFF\xFEx\0,y"), "f.csv: the file is UTF-16 encoded; save it as UTF-8 (\"CSV UTF-8\" in Excel)");
}

TEST(Csv, TextColumnsKeepTheirSpelling) {
  // "city" is text from its first cell; "zip" turns text at its third row, and its numbers before
  // keep their spelling ("007", not 7) through the second pass; "n" stays numeric.
  const CsvTable table = parse_csv("city,zip,n\nParis,007,1\nLyon,7,2\n\"Paris\",A1,3\n,NA,4\n", "f.csv");
  const CsvColumn& city = table.column("city");
  ASSERT_EQ(city.type, ColumnType::text);
  EXPECT_EQ(city.labels, (std::vector<std::string>{"Paris", "Lyon"}));
  EXPECT_EQ(city.codes, (std::vector<std::int32_t>{0, 1, 0, -1}));
  const CsvColumn& zip = table.column("zip");
  ASSERT_EQ(zip.type, ColumnType::text);
  EXPECT_EQ(zip.labels, (std::vector<std::string>{"007", "7", "A1"}));
  EXPECT_EQ(zip.codes, (std::vector<std::int32_t>{0, 1, 2, -1}));
  EXPECT_TRUE(zip.missing(3));
  EXPECT_EQ(zip.cell(0), "007");
  EXPECT_EQ(table.column("n").type, ColumnType::number);
  EXPECT_EQ(table.column("n").cell(2), "3");
}

TEST(Csv, MissingTokensAreMissingInNumberAndTextColumns) {
  const std::string tokens[] = {"",    "NA",   "N/A",  "n/a",  "#N/A", "<NA>", "NaN",
                                "nan", "-NaN", "-nan", "NULL", "null", "None"};
  std::string text = "x,label\n";
  for (const std::string& token : tokens) text += token + "," + token + "\n";
  text += "1.5,b\n";
  const CsvTable table = parse_csv(text, "f.csv");
  const CsvColumn& x = table.column("x");
  const CsvColumn& label = table.column("label");
  ASSERT_EQ(x.type, ColumnType::number);
  ASSERT_EQ(label.type, ColumnType::text);  // only missing cells until "b": no second pass needed
  for (std::int64_t r = 0; r < 13; ++r) {
    EXPECT_TRUE(x.missing(r)) << tokens[r];
    EXPECT_TRUE(label.missing(r)) << tokens[r];
  }
  EXPECT_FALSE(x.missing(13));
  EXPECT_EQ(x.numbers[13], 1.5f);
  EXPECT_EQ(label.labels, std::vector<std::string>{"b"});
}

TEST(Csv, SkippedColumnsAreNotParsed) {
  // "id" holds text and "note" a quoted line break; neither is read, both must still be well formed CSV.
  const std::string text = "id,x,note,y\ncust_0,1,\"a\nb\",2\ncust_1,3,,4\n";
  const CsvTable only = parse_csv(text, "f.csv", {.columns = {"x", "y"}});
  EXPECT_EQ(only.column("id").type, ColumnType::skipped);
  EXPECT_TRUE(only.column("id").labels.empty());
  EXPECT_EQ(only.column("note").type, ColumnType::skipped);
  EXPECT_EQ(only.column("y").numbers, (std::vector<float>{2, 4}));
  const CsvTable skipped = parse_csv(text, "f.csv", {.skip_columns = {"id", "note"}});
  EXPECT_EQ(skipped.column("id").type, ColumnType::skipped);
  EXPECT_EQ(skipped.column("x").numbers, (std::vector<float>{1, 3}));
  const CsvTable forced = parse_csv(text, "f.csv", {.text_columns = {"x"}});
  EXPECT_EQ(forced.column("x").type, ColumnType::text);
  EXPECT_EQ(error_of(text, {.columns = {"z"}}), "f.csv: no column named 'z' to read; the columns are: id, x, note, y");
}

TEST(Csv, ErrorsNameFileLineColumn) {
  EXPECT_EQ(error_of(""), "f.csv: the file is empty; it needs a header row and at least one data row");
  EXPECT_EQ(error_of("a,b\n"), "f.csv: the file has a header but no data rows");
  EXPECT_EQ(error_of("a,b\n1,2\n3\n"), "f.csv:3: 1 fields, but the header has 2; every row needs one value per column");
  EXPECT_EQ(error_of("a,b\n1,inf\n"),
            "f.csv:2:2 (column 'b'): 'inf' is not a finite float32 number; remove or fix the value");
  EXPECT_EQ(error_of("a,b\n1,1e39\n"),
            "f.csv:2:2 (column 'b'): '1e39' is not a finite float32 number; remove or fix the value");
  EXPECT_EQ(error_of("a,b\n1,\"2\n"), "f.csv:2: a quoted field is never closed; add the closing quote");
  EXPECT_EQ(error_of("a,a\n1,2\n"), "f.csv:1:2: the column name 'a' appears twice; column names must be unique");
  EXPECT_NE(error_of("a,b\n1,2\"x\"\n").find("f.csv:2: a quote inside an unquoted field"), std::string::npos);
  EXPECT_EQ(error_of("a,b\n1,\"2\"x\n"), "f.csv:2: text after a closing quote; quote the whole field");
  EXPECT_EQ(error_of("a,b\n1,\"\" \"2\"\n"), "f.csv:2: text after a closing quote; quote the whole field");
  EXPECT_EQ(error_of("a,b\n1,2\n", {.delimiter = '"'}),
            "CsvOptions::delimiter '\"' cannot be used; pick a character such as , ; or tab");
  // The first error in the file is the one reported.
  EXPECT_EQ(error_of("a,b\n1,1e39\n3,\"4\n"),
            "f.csv:2:2 (column 'b'): '1e39' is not a finite float32 number; remove or fix the value");
}

TEST(Csv, TextAndMissingCellsInNumericColumnsAreRefusedWhereUsed) {
  EXPECT_EQ(split_error("a,b\n1,x\n", {"a"}),
            "f.csv:2:2 (column 'b'): 'x' is not a number; if the column holds ids or text, leave it out with "
            "ColumnSpec::ignore b "
            "or encode its values as categories with ColumnSpec::one_hot b");
  EXPECT_EQ(split_error("a,b\n1,x\n", {"b"}),
            "f.csv:2:2 (column 'b'): 'x' is not a number; a regression target must be numeric; to train a classifier "
            "on its labels, use the loss CrossEntropy");
  EXPECT_EQ(
      split_error("a,b\n1,2\n3,\"4,5\"\n", {"a"}),
      "f.csv:3:2 (column 'b'): '4,5' is not a number (it has a decimal comma: write decimal points, 1.5 rather "
      "than 1,5); if the column holds ids or text, leave it out with ColumnSpec::ignore b or encode its values as "
      "categories with ColumnSpec::one_hot b");
  EXPECT_EQ(split_error("a,b\n1,\n", {"a"}),
            "f.csv:2:2 (column 'b'): missing value (an empty cell, NA, NaN, null or the like); fill in a value or "
            "remove the row, or use ColumnSpec::missing fill (training means and missing-value indicators), drop "
            "(leaves such rows out) or mean");
}

TEST(Csv, HeaderOfOneFieldHintsAtTheDelimiter) {
  EXPECT_EQ(error_of("x1;x2;y\n1,5;2,5;3\n"),
            "f.csv:2: 3 fields, but the header has 1; every row needs one value per column; the header is one field "
            "holding ';': the file looks ';'-separated, so use CsvOptions::delimiter ;");
  EXPECT_EQ(split_error("x1\tx2\ty\n1\t2\t3\n", {"y"}),
            "f.csv: no column named 'y'; the columns are: x1\\tx2\\ty; the header is one field holding tab: the file "
            "looks tab-separated, so use CsvOptions::delimiter tab");
  EXPECT_EQ(error_of("a|b\n1|2,3\n"),
            "f.csv:2: 2 fields, but the header has 1; every row needs one value per column; the header is one field "
            "holding '|': the file looks '|'-separated, so use CsvOptions::delimiter |");
}

TEST(Csv, ControlCharactersAreEscapedInMessages) {
  const std::string bell("a,b\n1,x\ay\n");
  EXPECT_EQ(split_error(bell, {"a"}).rfind("f.csv:2:2 (column 'b'): 'x\\x07y' is not a number;", 0), 0u);
  // A NUL byte marks a binary file (a checkpoint, an archive given as data), named as such.
  const std::string nul("a,b\n1,x\0y\n", 10);
  EXPECT_EQ(split_error(nul, {"a"}), "f.csv: a binary file, not CSV text (it holds NUL bytes); give a CSV file");
  EXPECT_EQ(printable("tab\there\r\n\x7f"), "tab\\there\\r\\n\\x7f");
}

TEST(Csv, ReadsFilesAndPipes) {
  const std::string file = testing::work_path("small.csv"), pipe = testing::work_path("pipe.csv");
  std::ofstream(file) << "a,b\n1,2\n3,4\n";
  EXPECT_EQ(split_features_targets(read_csv(file), {"b"}).x, (Matrix{{1}, {3}}));
  std::filesystem::remove(pipe);
  ASSERT_EQ(mkfifo(pipe.c_str(), 0600), 0);
  std::thread writer([&] { std::ofstream(pipe) << "a,b\n5,6\n"; });
  const CsvTable table = read_csv(pipe);
  writer.join();
  EXPECT_EQ(table.column("b").numbers, std::vector<float>{6});
}

TEST(Csv, ShardsHoldEveryRowOnceAndNameTheFilesLines) {
  // Rows of uneven lengths, CRLF endings, a BOM and a quoted field: for each number of shards,
  // the shards' rows, in shard order, are the file's rows, with the file's line numbers.
  const std::string path = testing::work_path("shards.csv");
  std::string text = "\xEF\xBB\xBFid,name,value\r\n";
  for (int i = 0; i < 37; ++i)
    text += std::to_string(i) + ",\"n " + std::string(static_cast<std::size_t>(i % 9), 'x') + "\"," +
            std::to_string(i * 0.5) + "\r\n";
  std::ofstream(path, std::ios::binary) << text;
  const CsvTable whole = read_csv(path);
  for (int shards : {1, 2, 3, 5, 10}) {
    std::vector<float> ids;
    std::vector<std::int64_t> lines;
    for (int shard = 0; shard < shards; ++shard) {
      const CsvTable part = read_csv(path, {.shard = shard, .shards = shards});
      EXPECT_EQ(part.names(), whole.names());
      const std::vector<float>& column = part.column("id").numbers;
      ids.insert(ids.end(), column.begin(), column.end());
      lines.insert(lines.end(), part.line_of_row.begin(), part.line_of_row.end());
      EXPECT_NEAR(static_cast<double>(part.rows()), 37.0 / shards, 2.0) << shards << " shards";
    }
    EXPECT_EQ(ids, whole.column("id").numbers) << shards << " shards";
    EXPECT_EQ(lines, whole.line_of_row) << shards << " shards";
  }
  int empty = 0;  // 40 shards of 37 rows: at least 3 hold none, and say so
  for (int shard = 0; shard < 40; ++shard) try {
      read_csv(path, {.shard = shard, .shards = 40});
    } catch (const InputError& error) {
      ++empty;
      EXPECT_NE(std::string(error.what()).find("holds no rows; the file has too few rows for 40 shards"),
                std::string::npos)
          << error.what();
    }
  EXPECT_GE(empty, 3);
  // A bad cell in the last shard is named by its line in the file.
  std::ofstream(path, std::ios::binary) << "a,b\n1,2\n3,4\n5,6\n7,oops\n";
  try {
    split_features_targets(read_csv(path, {.shard = 1, .shards = 2}), {"b"});
    FAIL();
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("shards.csv:5:2 (column 'b')"), std::string::npos) << error.what();
  }
  EXPECT_NE(error_of("a\n1\n", {.shard = 0, .shards = 2}).find("CsvOptions::shards is for read_csv"),
            std::string::npos);
}

TEST(Csv, MissingFileAndColumns) {
  try {
    read_csv("/nonexistent/data.csv");
    FAIL();
  } catch (const InputError& error) {
    EXPECT_EQ(std::string(error.what()),
              "/nonexistent/data.csv: cannot open the file (No such file or directory); check the path");
  }
  const CsvTable table = parse_csv("a,b,c\n1,2,3\n", "f.csv");
  EXPECT_THROW(split_features_targets(table, {"z"}), InputError);
  EXPECT_THROW(split_features_targets(table, {"a", "b", "c"}), InputError);
  const Dataset data = split_features_targets(table, {"b"});
  EXPECT_EQ(data.feature_names, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(data.x, (Matrix{{1, 3}}));
  EXPECT_EQ(data.y, (Matrix{{2}}));
}

}  // namespace
}  // namespace ember
