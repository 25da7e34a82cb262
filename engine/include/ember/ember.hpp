#pragma once
// Everything a user of the library needs: models, data, losses, optimizers, schedules, devices,
// data-parallel training.
// Beyond it: ember/testing.hpp (comparing backends in tests), ember/format.hpp (fmt formatting),
// ember/random.hpp, and ember/backend.hpp for writing or testing a backend. What `ember demo` and
// `ember bench` run is the CLI's (apps/tools), not the library's.
#include "ember/data.hpp"
#include "ember/device.hpp"
#include "ember/distributed.hpp"
#include "ember/error.hpp"
#include "ember/losses.hpp"
#include "ember/model.hpp"
#include "ember/optimizers.hpp"
#include "ember/preprocessing.hpp"
#include "ember/schedules.hpp"
#include "ember/tensor.hpp"
#include "ember/threads.hpp"
