{
  "targets": [
    {
      "target_name": "sb_fd",
      "sources": ["native/fd.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "sb_daemon",
      "sources": ["native/daemon.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    # (no -std here: Node's own common.gypi picks the C++ standard its V8 headers need,
    # gnu++17 for Node 20 and gnu++20 from Node 24 on, which refuse to compile as C++17)
    {
      "target_name": "sb_shm",
      "sources": ["native/shm.cc"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_cc": ["-O2"],
      "libraries": ["-lpthread", "-lrt"],
      "ldflags": ["-Wl,-z,nodelete"]
    }
  ]
}
