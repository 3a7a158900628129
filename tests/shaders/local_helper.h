// Found next to the shader that includes it (no include_dirs needed).
#pragma once
#define LOCAL_OFFSET 1000
