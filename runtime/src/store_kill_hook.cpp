// A test-only crash point inside SQLite's writes (docs/durability.md, "Crash testing"). When
// the environment variable KOTOBA_TEST_KILL_AT_WRITE=N is set, the process registers, as
// SQLite's default, a VFS that wraps the real one and counts every write, sync and truncate
// of the files it opens (the store file, its WAL and journals); at the Nth it raises SIGKILL
// before doing it. A crash test sweeps N to kill the engine at every point of a commit, which
// random timing rarely hits. Without the variable nothing is registered and SQLite runs
// untouched.
#include "store_internal.h"

#include <sqlite3.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace kotoba::runtime::detail {

namespace {

constexpr const char *kVfsName = "kotoba-test-kill";

sqlite3_vfs *realVfs = nullptr;
std::atomic<int64_t> killAt{0};
std::atomic<int64_t> operations{0};

// A file of the wrapping VFS: its own header, then the real VFS's file in the same block
// (szOsFile covers both).
struct KillFile {
  sqlite3_file base;
  sqlite3_file *real;
};

sqlite3_file *real(sqlite3_file *file) {
  return reinterpret_cast<KillFile *>(file)->real;
}

// Counts one write-like operation; the Nth never happens, and neither does anything after
// it, as when the machine loses power or the process is killed right there.
void countOperation() {
  if (++operations == killAt.load()) {
    std::raise(SIGKILL);
  }
}

int killClose(sqlite3_file *file) {
  return real(file)->pMethods->xClose(real(file));
}
int killRead(sqlite3_file *file, void *buffer, int amount, sqlite3_int64 offset) {
  return real(file)->pMethods->xRead(real(file), buffer, amount, offset);
}
int killWrite(sqlite3_file *file, const void *buffer, int amount, sqlite3_int64 offset) {
  countOperation();
  return real(file)->pMethods->xWrite(real(file), buffer, amount, offset);
}
int killTruncate(sqlite3_file *file, sqlite3_int64 size) {
  countOperation();
  return real(file)->pMethods->xTruncate(real(file), size);
}
int killSync(sqlite3_file *file, int flags) {
  countOperation();
  return real(file)->pMethods->xSync(real(file), flags);
}
int killFileSize(sqlite3_file *file, sqlite3_int64 *size) {
  return real(file)->pMethods->xFileSize(real(file), size);
}
int killLock(sqlite3_file *file, int lock) {
  return real(file)->pMethods->xLock(real(file), lock);
}
int killUnlock(sqlite3_file *file, int lock) {
  return real(file)->pMethods->xUnlock(real(file), lock);
}
int killCheckReservedLock(sqlite3_file *file, int *result) {
  return real(file)->pMethods->xCheckReservedLock(real(file), result);
}
int killFileControl(sqlite3_file *file, int operation, void *argument) {
  return real(file)->pMethods->xFileControl(real(file), operation, argument);
}
int killSectorSize(sqlite3_file *file) {
  return real(file)->pMethods->xSectorSize(real(file));
}
int killDeviceCharacteristics(sqlite3_file *file) {
  return real(file)->pMethods->xDeviceCharacteristics(real(file));
}
int killShmMap(sqlite3_file *file, int region, int size, int extend, void volatile **memory) {
  return real(file)->pMethods->xShmMap(real(file), region, size, extend, memory);
}
int killShmLock(sqlite3_file *file, int offset, int count, int flags) {
  return real(file)->pMethods->xShmLock(real(file), offset, count, flags);
}
void killShmBarrier(sqlite3_file *file) {
  real(file)->pMethods->xShmBarrier(real(file));
}
int killShmUnmap(sqlite3_file *file, int deleteFlag) {
  return real(file)->pMethods->xShmUnmap(real(file), deleteFlag);
}
int killFetch(sqlite3_file *file, sqlite3_int64 offset, int amount, void **page) {
  return real(file)->pMethods->xFetch(real(file), offset, amount, page);
}
int killUnfetch(sqlite3_file *file, sqlite3_int64 offset, void *page) {
  return real(file)->pMethods->xUnfetch(real(file), offset, page);
}

// Version 3 methods; a real file with fewer (no shared memory, no memory mapping) gets the
// version-1 table instead, so SQLite never calls what the real file lacks.
const sqlite3_io_methods kMethodsV3 = {3,
                                       killClose,
                                       killRead,
                                       killWrite,
                                       killTruncate,
                                       killSync,
                                       killFileSize,
                                       killLock,
                                       killUnlock,
                                       killCheckReservedLock,
                                       killFileControl,
                                       killSectorSize,
                                       killDeviceCharacteristics,
                                       killShmMap,
                                       killShmLock,
                                       killShmBarrier,
                                       killShmUnmap,
                                       killFetch,
                                       killUnfetch};
const sqlite3_io_methods kMethodsV1 = {1,
                                       killClose,
                                       killRead,
                                       killWrite,
                                       killTruncate,
                                       killSync,
                                       killFileSize,
                                       killLock,
                                       killUnlock,
                                       killCheckReservedLock,
                                       killFileControl,
                                       killSectorSize,
                                       killDeviceCharacteristics,
                                       nullptr,
                                       nullptr,
                                       nullptr,
                                       nullptr,
                                       nullptr,
                                       nullptr};

int killOpen(sqlite3_vfs *, sqlite3_filename name, sqlite3_file *file, int flags, int *outFlags) {
  auto *wrapper = reinterpret_cast<KillFile *>(file);
  wrapper->real = reinterpret_cast<sqlite3_file *>(wrapper + 1);
  int code = realVfs->xOpen(realVfs, name, wrapper->real, flags, outFlags);
  if (wrapper->real->pMethods == nullptr) {
    wrapper->base.pMethods = nullptr; // nothing to close
    return code;
  }
  wrapper->base.pMethods = wrapper->real->pMethods->iVersion >= 3 ? &kMethodsV3 : &kMethodsV1;
  return code;
}
int killDelete(sqlite3_vfs *, const char *name, int syncDirectory) {
  return realVfs->xDelete(realVfs, name, syncDirectory);
}
int killAccess(sqlite3_vfs *, const char *name, int flags, int *result) {
  return realVfs->xAccess(realVfs, name, flags, result);
}
int killFullPathname(sqlite3_vfs *, const char *name, int size, char *out) {
  return realVfs->xFullPathname(realVfs, name, size, out);
}
void *killDlOpen(sqlite3_vfs *, const char *name) {
  return realVfs->xDlOpen(realVfs, name);
}
void killDlError(sqlite3_vfs *, int size, char *message) {
  realVfs->xDlError(realVfs, size, message);
}
void (*killDlSym(sqlite3_vfs *, void *handle, const char *symbol))() {
  return realVfs->xDlSym(realVfs, handle, symbol);
}
void killDlClose(sqlite3_vfs *, void *handle) {
  realVfs->xDlClose(realVfs, handle);
}
int killRandomness(sqlite3_vfs *, int size, char *out) {
  return realVfs->xRandomness(realVfs, size, out);
}
int killSleep(sqlite3_vfs *, int microseconds) {
  return realVfs->xSleep(realVfs, microseconds);
}
int killCurrentTime(sqlite3_vfs *, double *now) {
  return realVfs->xCurrentTime(realVfs, now);
}
int killGetLastError(sqlite3_vfs *, int size, char *message) {
  return realVfs->xGetLastError(realVfs, size, message);
}
int killCurrentTimeInt64(sqlite3_vfs *, sqlite3_int64 *now) {
  return realVfs->xCurrentTimeInt64(realVfs, now);
}

sqlite3_vfs killVfs;

void registerKillVfs() {
  const char *setting = std::getenv("KOTOBA_TEST_KILL_AT_WRITE");
  if (setting == nullptr || *setting == '\0') {
    return;
  }
  char *end = nullptr;
  long long at = std::strtoll(setting, &end, 10);
  if (*end != '\0' || at <= 0) {
    return; // not a positive count: no crash point
  }
  realVfs = sqlite3_vfs_find(nullptr);
  if (realVfs == nullptr || realVfs->iVersion < 2) {
    return;
  }
  killAt = at;
  std::memset(&killVfs, 0, sizeof killVfs);
  killVfs.iVersion = 2;
  killVfs.szOsFile = static_cast<int>(sizeof(KillFile)) + realVfs->szOsFile;
  killVfs.mxPathname = realVfs->mxPathname;
  killVfs.zName = kVfsName;
  killVfs.xOpen = killOpen;
  killVfs.xDelete = killDelete;
  killVfs.xAccess = killAccess;
  killVfs.xFullPathname = killFullPathname;
  killVfs.xDlOpen = killDlOpen;
  killVfs.xDlError = killDlError;
  killVfs.xDlSym = killDlSym;
  killVfs.xDlClose = killDlClose;
  killVfs.xRandomness = killRandomness;
  killVfs.xSleep = killSleep;
  killVfs.xCurrentTime = killCurrentTime;
  killVfs.xGetLastError = killGetLastError;
  killVfs.xCurrentTimeInt64 = killCurrentTimeInt64;
  (void)sqlite3_vfs_register(&killVfs, /*makeDflt=*/1);
}

} // namespace

void installTestKillHook() {
  static std::once_flag once;
  std::call_once(once, registerKillVfs);
}

} // namespace kotoba::runtime::detail
