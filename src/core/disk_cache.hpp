// The on-disk cache of compiled kernels: $METALGPU_CACHE_DIR, else $XDG_CACHE_HOME/metalgpu,
// else ~/.cache/metalgpu; "0" turns it off. Entries are written atomically (temp + rename).
#pragma once

#include <optional>
#include <string>

namespace metalgpu {

std::optional<std::string> cache_dir();  // created on first use; nullopt when disabled/unusable

// $METALGPU_DUMP, the folder generated code is written to: created when missing; nullopt when
// the variable is unset, or when the folder cannot be made (said once on stderr).
std::optional<std::string> dump_dir();

// A fresh private folder for temporary files of this process (removed at exit).
std::string scratch_dir();

// Moves `temp` to `final` atomically; another process may have done the same: that is fine.
void publish_file(const std::string& temp, const std::string& final_path);

}  // namespace metalgpu
