#pragma once
// The CPU emulator's stand-in for the CUDA runtime header: all of it is in cuda_runtime_api.h.
#include "cuda_runtime_api.h"
