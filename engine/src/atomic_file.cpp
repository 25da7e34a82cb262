#include "atomic_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ember/data.hpp"
#include "ember/error.hpp"

namespace ember {
namespace {

std::string folder_of(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

/// A name no other writer uses: the target's, the process id and a counter.
std::string temporary_name(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  return fmt::format("{}.tmp.{}.{}", path, static_cast<long>(getpid()), counter.fetch_add(1));
}

/// Opens a new temporary file beside path; the descriptor, or InputError naming why not.
int create_temporary(const std::string& path, std::string& temporary) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored))
    throw InputError(fmt::format("{}: is a directory; give a file name", path));
  const std::string folder = folder_of(path);
  if (!std::filesystem::is_directory(folder, ignored))
    throw InputError(fmt::format("{}: the directory '{}' does not exist; create it first", path, folder));
  for (int attempt = 0;; ++attempt) {
    temporary = temporary_name(path);
    const int descriptor = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (descriptor >= 0) return descriptor;
    if (errno == EEXIST && attempt < 100) continue;
    throw InputError(fmt::format("{}: cannot write in the directory '{}' ({}); pick a writable directory", path, folder,
                                 std::strerror(errno)));
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  descriptor_ = create_temporary(path_, temporary_);
}

AtomicFile::~AtomicFile() {
  if (descriptor_ >= 0) ::close(descriptor_);
  if (!temporary_.empty()) ::unlink(temporary_.c_str());
}

void AtomicFile::write(const void* data, std::size_t bytes) {
  const auto* at = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t written = ::write(descriptor_, at, bytes);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0)
      throw Error(fmt::format("{}: writing failed ({}); the file was left as it was", path_,
                              written < 0 ? std::strerror(errno) : "no space written"));
    at += written;
    bytes -= static_cast<std::size_t>(written);
  }
}

void AtomicFile::commit() {
  if (::fsync(descriptor_) != 0)
    throw Error(fmt::format("{}: writing failed ({}); the file was left as it was", path_, std::strerror(errno)));
  const int closed = ::close(descriptor_);
  descriptor_ = -1;
  if (closed != 0)
    throw Error(fmt::format("{}: writing failed ({}); the file was left as it was", path_, std::strerror(errno)));
  if (::rename(temporary_.c_str(), path_.c_str()) != 0)
    throw Error(fmt::format("{}: cannot move the file into place ({})", path_, std::strerror(errno)));
  temporary_.clear();
  // The rename is an entry in the folder: syncing the folder makes it durable. Some file systems
  // cannot sync a folder; the file itself is complete either way.
  const int folder = ::open(folder_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (folder >= 0) {
    ::fsync(folder);
    ::close(folder);
  }
}

void write_file_atomically(const std::string& path, std::string_view content) {
  AtomicFile file(path);
  file.write(content);
  file.commit();
}

void check_writable(const std::string& path) {
  std::string temporary;
  const int descriptor = create_temporary(path, temporary);
  ::close(descriptor);
  ::unlink(temporary.c_str());
}

}  // namespace ember
