#pragma once
// Everything a user of the library needs.
#include "ember/backend.hpp"
#include "ember/bench.hpp"
#include "ember/data.hpp"
#include "ember/demo.hpp"
#include "ember/error.hpp"
#include "ember/model.hpp"
#include "ember/preprocessing.hpp"
#include "ember/random.hpp"
#include "ember/tensor.hpp"
