// CSV parsing (RFC 4180) and its error messages.
#include <gtest/gtest.h>
#include <sys/stat.h>

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

TEST(Csv, ParsesQuotedFieldsCrlfAndBlankLines) {
  const CsvTable table = parse_csv("a,\"b \"\"x\"\"\",\"c\nd\"\r\n1,2,3\r\n\r\n\"4\", 5 ,6e-1\n", "f.csv");
  ASSERT_EQ(table.header.size(), 3u);
  EXPECT_EQ(table.header[1], "b \"x\"");
  EXPECT_EQ(table.header[2], "c\nd");
  EXPECT_EQ(table.values, (Matrix{{1, 2, 3}, {4, 5, 0.6f}}));
  EXPECT_EQ(table.line_of_row[0], 3);  // the header spans lines 1-2
  EXPECT_EQ(table.line_of_row[1], 5);
}

TEST(Csv, OtherDelimiter) {
  const CsvTable table = parse_csv("a;b\n1;2\n", "f.csv", {.delimiter = ';'});
  EXPECT_EQ(table.values, (Matrix{{1, 2}}));
}

TEST(Csv, ErrorsNameFileLineColumn) {
  EXPECT_EQ(error_of(""), "f.csv: the file is empty; it needs a header row and at least one data row");
  EXPECT_EQ(error_of("a,b\n"), "f.csv: the file has a header but no data rows");
  EXPECT_EQ(error_of("a,b\n1,2\n3\n"), "f.csv:3: 1 fields, but the header has 2; every row needs one value per column");
  EXPECT_EQ(error_of("a,b\n1,x\n"), "f.csv:2:2 (column 'b'): 'x' is not a number; every cell must be numeric");
  EXPECT_EQ(error_of("a,b\n1,\n"), "f.csv:2:2 (column 'b'): empty cell; fill in a number or remove the row");
  EXPECT_EQ(error_of("a,b\nnan,1\n"),
            "f.csv:2:1 (column 'a'): 'nan' is not a finite float32 number; remove or fix the value");
  EXPECT_EQ(error_of("a,b\n1,inf\n"),
            "f.csv:2:2 (column 'b'): 'inf' is not a finite float32 number; remove or fix the value");
  EXPECT_EQ(error_of("a,b\n1,1e39\n"),
            "f.csv:2:2 (column 'b'): '1e39' is not a finite float32 number; remove or fix the value");
  EXPECT_EQ(error_of("a,b\n1,\"2\n"), "f.csv:2: a quoted field is never closed; add the closing quote");
  EXPECT_EQ(error_of("a,a\n1,2\n"), "f.csv:1:2: the column name 'a' appears twice; column names must be unique");
  EXPECT_NE(error_of("a,b\n1,2\"x\"\n").find("f.csv:2: a quote inside an unquoted field"), std::string::npos);
  EXPECT_EQ(error_of("a,b\n1,\"2\"x\n"), "f.csv:2: text after a closing quote; quote the whole field");
  EXPECT_EQ(error_of("a,b\n1,\"\" \"2\"\n"), "f.csv:2: text after a closing quote; quote the whole field");
  // The first error in the file is the one reported.
  EXPECT_EQ(error_of("a,b\n1,x\n3,\"4\n"), "f.csv:2:2 (column 'b'): 'x' is not a number; every cell must be numeric");
}

TEST(Csv, ReadsFilesAndPipes) {
  const std::string file = testing::work_path("small.csv"), pipe = testing::work_path("pipe.csv");
  std::ofstream(file) << "a,b\n1,2\n3,4\n";
  EXPECT_EQ(read_csv(file).values, (Matrix{{1, 2}, {3, 4}}));
  std::filesystem::remove(pipe);
  ASSERT_EQ(mkfifo(pipe.c_str(), 0600), 0);
  std::thread writer([&] { std::ofstream(pipe) << "a,b\n5,6\n"; });
  const CsvTable table = read_csv(pipe);
  writer.join();
  EXPECT_EQ(table.values, (Matrix{{5, 6}}));
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
