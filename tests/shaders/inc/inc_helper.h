// Found only through include_dirs=[tests/shaders/inc].
#pragma once
inline int inc_twice(int v) { return 2 * v; }
