#pragma once
// Ember's one error idiom: every exception derives from ember::Error and carries the exit code
// the command line returns for it (documented in README.md, "Exit codes").
#include <stdexcept>
#include <string>

namespace ember {

/// Base of every exception Ember throws. Exit code 1: an internal or environment failure.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  virtual int exit_code() const noexcept { return 1; }
};

/// Bad input from the user (a file, a flag, a value, an unusable device). Exit code 2.
class InputError : public Error {
 public:
  using Error::Error;
  int exit_code() const noexcept override { return 2; }
};

/// An InputError about one setting of the library, named as the library names it ("SGD::lr",
/// "FitOptions::batch_size"): what() is "SETTING DETAIL". The command line reports it under the
/// flag that sets it.
class SettingError : public InputError {
 public:
  SettingError(std::string setting, std::string detail)
      : InputError(setting + " " + detail), setting_(std::move(setting)), detail_(std::move(detail)) {}
  const std::string& setting() const noexcept { return setting_; }
  const std::string& detail() const noexcept { return detail_; }

 private:
  std::string setting_, detail_;
};

/// Training produced a non-finite loss. Exit code 3.
class DivergenceError : public Error {
 public:
  using Error::Error;
  int exit_code() const noexcept override { return 3; }
};

}  // namespace ember
