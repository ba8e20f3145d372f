{
  "targets": [
    {
      "target_name": "matmul",
      "sources": ["matmul.c"],
      "cflags": ["-O3", "-ffp-contract=off", "-fno-fast-math", "-std=gnu11"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O3", "-ffp-contract=off", "-fno-fast-math"] }
    }
  ]
}
