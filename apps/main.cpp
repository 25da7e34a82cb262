// `ember`: train, predict, evaluate, inspect, export, demo, info, bench. Thin: parses arguments, calls the library,
// prints.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli_common.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "Ember: train small neural networks on tabular data, on NVIDIA GPUs or the CPU.\n"
      "Exit codes: 0 success, 1 internal error, 2 bad input or flags, 3 training diverged, 130 interrupted."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ember 0.1.0");
  ember::cli::add_train_command(app);
  ember::cli::add_predict_commands(app);
  ember::cli::add_inspect_command(app);
  ember::cli::add_export_command(app);
  ember::cli::add_info_commands(app);
  ember::cli::add_bench_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return ember::cli::report_error(fmt::format("{}; run 'ember --help' or 'ember COMMAND --help'", e.what()),
                                    ember::cli::exit_input);
  } catch (const ember::cli::Interrupted&) {
    return ember::cli::exit_interrupted;
  } catch (const ember::Error& e) {
    return ember::cli::report_error(ember::cli::in_flags(e.what()), e.exit_code());
  } catch (const std::exception& e) {
    return ember::cli::report_error(std::string("internal: ") + e.what(), ember::cli::exit_internal);
  }
  return ember::cli::exit_ok;
}
