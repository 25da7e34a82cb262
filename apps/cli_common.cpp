#include "cli_common.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ember::cli {

void check_output_path(const std::string& path, const std::string& flag) {
  if (path.empty()) throw InputError(fmt::format("{} needs a file name", flag));
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent))
    throw InputError(fmt::format("{} {}: the directory '{}' does not exist; create it first", flag, path, parent.string()));
  if (std::filesystem::is_directory(path))
    throw InputError(fmt::format("{} {}: is a directory; give a file name", flag, path));
}

void write_file_atomically(const std::string& path, const std::string& content) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    if (!file) throw InputError(fmt::format("{}: cannot write ({}); check the directory is writable", path, std::strerror(errno)));
    file << content;
    file.flush();
    if (!file) {
      file.close();
      std::filesystem::remove(temporary);
      throw Error(fmt::format("{}: writing failed ({})", path, std::strerror(errno)));
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::filesystem::remove(temporary);
    throw Error(fmt::format("{}: cannot move the file into place ({})", path, error.message()));
  }
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, ','))
    if (!part.empty()) parts.push_back(part);
  return parts;
}

char parse_delimiter(const std::string& text) {
  if (text == "\\t" || text == "tab") return '\t';
  if (text.size() != 1) throw InputError(fmt::format("--delimiter '{}' must be one character (or 'tab')", text));
  return text[0];
}

std::string format_number(double value) { return fmt::format("{}", static_cast<float>(value)); }

}  // namespace ember::cli
