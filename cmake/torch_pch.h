// The precompiled header shared by every LibTorch translation unit (see cmake/RlvrTargets.cmake).
#pragma once
#include <torch/torch.h>
