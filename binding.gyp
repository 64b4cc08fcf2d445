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
    {
      "target_name": "sb_shm",
      "sources": ["native/shm.cc"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_cc": ["-std=gnu++17", "-O2"],
      "libraries": ["-lpthread", "-lrt"],
      "ldflags": ["-Wl,-z,nodelete"]
    }
  ]
}
