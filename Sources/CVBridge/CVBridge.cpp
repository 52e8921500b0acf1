#include "CVBridge.h"
