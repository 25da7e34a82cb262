#include "cpu/openblas_kernels.hpp"

#ifdef EMBER_WITH_OPENBLAS
#include <cblas.h>
#include <dlfcn.h>
#include <fmt/format.h>
#include <strings.h>

#include <array>
#include <cstdlib>
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

const Core* find_core(const std::string& name) {
  for (const Core& core : kCores)
    if (strcasecmp(name.c_str(), core.name) == 0) return &core;
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

/// What OpenBLAS picked itself and the CPU's vectors, for describe_kernels.
struct Choice {
  std::string picked;
  Vectors cpu = Vectors::sse;
};

Choice& choice() {
  static Choice value;
  return value;
}

/// OpenBLAS's DYNAMIC_ARCH entry points that pick the kernels, in the library that holds the
/// cblas_sgemm Ember calls; both null where that library has none (a build for one CPU).
struct DynamicArch {
  void (*quit)() = nullptr;
  void (*init)() = nullptr;
};

DynamicArch dynamic_arch() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&cblas_sgemm), &info) == 0 || info.dli_fname == nullptr) return {};
  void* library = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
  if (library == nullptr) return {};
  DynamicArch found{reinterpret_cast<void (*)()>(dlsym(library, "gotoblas_dynamic_quit")),
                    reinterpret_cast<void (*)()>(dlsym(library, "gotoblas_dynamic_init"))};
  dlclose(library);  // RTLD_NOLOAD took a reference to a library that stays loaded
  return found.quit != nullptr && found.init != nullptr ? found : DynamicArch{};
}

/// Where OPENBLAS_CORETYPE is unset and the loaded OpenBLAS runs kernels for fewer vector
/// instructions than the CPU has, switches it to the kernels for the CPU's set.
void choose_kernels() {
  Choice& result = choice();
  result.picked = current_name();
  result.cpu = cpu_vectors();
  // The user's choice wins; names Ember does not know (other architectures, later kernel sets) stay.
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const Core* picked = find_core(result.picked);
  const Core* wanted = first_core(result.cpu);
  if (picked == nullptr || wanted == nullptr || picked->vectors >= result.cpu) return;
  const DynamicArch arch = dynamic_arch();
  if (arch.init == nullptr) return;
  // OpenBLAS reads its choice from OPENBLAS_CORETYPE on initialization; the variable is set only
  // for that call, so the environment stays the user's. This runs as Ember's library loads (below),
  // before any product of Ember's and while no other code of the process runs in it. Where another
  // library loaded another OpenBLAS build first (Debian's numpy), Ember's products run on that one,
  // and it too gets kernels for the CPU: Python and the CLI then compute the same bits.
  ::setenv("OPENBLAS_CORETYPE", wanted->name, 1);
  arch.quit();
  arch.init();
  ::unsetenv("OPENBLAS_CORETYPE");
}

// As the library loads: in a program, before main; in Python, while `import ember` holds the GIL.
[[maybe_unused]] const bool chosen_as_the_library_loads = (choose_kernels(), true);

}  // namespace

std::string describe_kernels() {
  const Choice& result = choice();
  const std::string now = current_name();
  if (now.empty()) return "";
  if (now == result.picked) return fmt::format("{} kernels", now);
  return fmt::format("{} kernels, chosen by Ember for this CPU's {} where OpenBLAS named {}", now,
                     vectors_name(result.cpu), result.picked);
}
#else
std::string describe_kernels() {
  return "";
}
#endif

}  // namespace ember::openblas
