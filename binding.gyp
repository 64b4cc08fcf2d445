{
  "targets": [
    {
      "target_name": "sb_fd",
      "sources": ["native/fd.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
