// Symbol visibility for the metalgpu core library.
#pragma once

#if defined(_WIN32)
#define METALGPU_API
#else
#define METALGPU_API __attribute__((visibility("default")))
#endif
