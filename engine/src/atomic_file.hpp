#pragma once
// The one way Ember writes a file (checkpoints, predictions, histories, plots, metrics): into a
// temporary file beside the target, flushed to the disk, then renamed over the target, so that a
// crash, a full disk or an error leaves either the old file or the whole new one, never a part.
#include <cstddef>
#include <string>
#include <string_view>

namespace ember {

class AtomicFile {
 public:
  /// Creates the temporary file in path's folder. InputError (naming path and the reason) when the
  /// folder is missing or not writable.
  explicit AtomicFile(std::string path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  /// Removes the temporary file unless commit() succeeded.
  ~AtomicFile();

  /// Appends bytes; Error when the disk refuses them.
  void write(const void* data, std::size_t bytes);
  void write(std::string_view text) { write(text.data(), text.size()); }
  /// fsync, rename over the target, fsync the folder (so that the rename itself survives a crash).
  void commit();

 private:
  std::string path_, temporary_;
  int descriptor_ = -1;
};

}  // namespace ember
