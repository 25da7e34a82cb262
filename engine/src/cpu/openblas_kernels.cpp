#include "cpu/openblas_kernels.hpp"

#ifdef EMBER_WITH_OPENBLAS
#include <cblas.h>
#include <dlfcn.h>
#include <fmt/format.h>
#include <strings.h>

#include <array>
#include <cstdlib>
#include <mutex>
#include <string_view>
#endif

namespace ember::openblas {

#ifdef EMBER_WITH_OPENBLAS
namespace {

/// The widest vector instructions a set of kernels, or the CPU, uses.
enum class Vectors { sse, avx, avx2, avx512 };

struct Core {
  const char* name;
  Vectors vectors;
};

/// OpenBLAS's x86-64 kernel sets by the instructions they use; the first of each width is the one
/// Ember switches to.
constexpr std::array kCores = {
    Core{"SkylakeX", Vectors::avx512}, Core{"Cooperlake", Vectors::avx512}, Core{"SapphireRapids", Vectors::avx512},
    Core{"Haswell", Vectors::avx2},    Core{"Zen", Vectors::avx2},          Core{"Sandybridge", Vectors::avx},
    Core{"Bulldozer", Vectors::avx},   Core{"Piledriver", Vectors::avx},    Core{"Steamroller", Vectors::avx},
    Core{"Excavator", Vectors::avx},   Core{"Prescott", Vectors::sse},      Core{"Core2", Vectors::sse},
    Core{"Penryn", Vectors::sse},      Core{"Dunnington", Vectors::sse},    Core{"Nehalem", Vectors::sse},
    Core{"Atom", Vectors::sse},        Core{"Nano", Vectors::sse},          Core{"Barcelona", Vectors::sse},
    Core{"Opteron", Vectors::sse},     Core{"Opteron_SSE3", Vectors::sse},  Core{"Bobcat", Vectors::sse},
    Core{"Katmai", Vectors::sse},      Core{"Coppermine", Vectors::sse},    Core{"Northwood", Vectors::sse},
    Core{"Banias", Vectors::sse},      Core{"Athlon", Vectors::sse},        Core{"Unknown", Vectors::sse}};

const Core* find_core(std::string_view name) {
  for (const Core& core : kCores)
    if (name.size() == std::string_view(core.name).size() && strncasecmp(name.data(), core.name, name.size()) == 0)
      return &core;
  return nullptr;
}

const Core* first_core(Vectors vectors) {
  for (const Core& core : kCores)
    if (core.vectors == vectors) return &core;
  return nullptr;
}

const char* vectors_name(Vectors vectors) {
  switch (vectors) {
    case Vectors::avx512:
      return "AVX-512";
    case Vectors::avx2:
      return "AVX2 and FMA";
    case Vectors::avx:
      return "AVX";
    case Vectors::sse:
      break;
  }
  return "SSE";
}

/// The CPU's widest set that the operating system also saves (GCC's checks read XCR0), as
/// OpenBLAS's SkylakeX kernels need it: AVX-512 F, CD, BW, DQ and VL.
Vectors cpu_vectors() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return Vectors::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Vectors::avx2;
  if (__builtin_cpu_supports("avx")) return Vectors::avx;
#endif
  return Vectors::sse;
}

std::string current_name() {
  const char* name = openblas_get_corename();
  return name != nullptr ? name : "";
}

/// What choose_kernels found and did, for describe_kernels.
struct Choice {
  std::string picked;  // the kernels OpenBLAS picked itself
  std::string chosen;  // the kernels Ember switched to; empty where it kept OpenBLAS's
  Vectors cpu = Vectors::sse;
};

Choice& choice() {
  static Choice value;
  return value;
}

/// OpenBLAS's DYNAMIC_ARCH entry points that pick the kernels, looked up in the library that holds
/// the cblas_sgemm Ember calls; null where that library has none (a build for one CPU).
template <typename Function>
Function* dynamic_arch_function(const char* name) {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&cblas_sgemm), &info) == 0 || info.dli_fname == nullptr) return nullptr;
  void* library = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
  if (library == nullptr) return nullptr;
  void* symbol = dlsym(library, name);
  dlclose(library);  // RTLD_NOLOAD took a reference to a library that stays loaded
  return reinterpret_cast<Function*>(symbol);
}

void choose_once() {
  Choice& result = choice();
  result.picked = current_name();
  result.cpu = cpu_vectors();
  // The user's choice wins; names Ember does not know (other architectures, later kernel sets) stay.
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const Core* picked = find_core(result.picked);
  const Core* wanted = first_core(result.cpu);
  if (picked == nullptr || wanted == nullptr || picked->vectors >= result.cpu) return;
  auto* quit = dynamic_arch_function<void()>("gotoblas_dynamic_quit");
  auto* init = dynamic_arch_function<void()>("gotoblas_dynamic_init");
  if (quit == nullptr || init == nullptr) return;
  // OpenBLAS reads its choice from OPENBLAS_CORETYPE on initialization; the variable is set only
  // for that call, so the environment stays the user's. This runs as Ember's library loads (below),
  // before any product of Ember's and while no other code of the process runs in it. Where another
  // library loaded another OpenBLAS build first (Debian's numpy), Ember's products run on that one,
  // and it too gets kernels for the CPU: Python and the CLI then compute the same bits.
  ::setenv("OPENBLAS_CORETYPE", wanted->name, 1);
  quit();
  init();
  ::unsetenv("OPENBLAS_CORETYPE");
  result.chosen = current_name();
}

}  // namespace

void choose_kernels() {
  static std::once_flag once;
  std::call_once(once, choose_once);
}

namespace {
// As the library loads: in a program, before main; in Python, while `import ember` holds the GIL.
[[maybe_unused]] const bool chosen_as_the_library_loads = (choose_kernels(), true);
}  // namespace

std::string describe_kernels() {
  const Choice& result = choice();
  const std::string now = current_name();
  if (now.empty()) return "";
  if (result.chosen.empty() || result.chosen == result.picked) return fmt::format("{} kernels", now);
  return fmt::format("{} kernels, chosen by Ember for this CPU's {} where OpenBLAS named {}", now,
                     vectors_name(result.cpu), result.picked);
}
#else
void choose_kernels() {}
std::string describe_kernels() {
  return "";
}
#endif

}  // namespace ember::openblas
