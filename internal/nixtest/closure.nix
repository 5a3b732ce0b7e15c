# The closure storepack's conformance tests compare against Nix: built with
# `nix-build --option sandbox false --no-out-link closure.nix -A top ...`,
# with no channel, each derivation a /bin/sh script.
#
#   top -> left  -> leaf            (a chain, and with right a diamond)
#       -> right -> leaf            (right refers to leaf only through a symlink target)
#       -> hello -> busybox         (bin/hello runs under "#!<busybox> sh")
#       -> odd                      (odd names, hard links, a self-reference)
#       -> link  -> leaf            (the item is itself a symlink)
#       -> file                     (the item is a single executable file)
#       -> long name item           (a 200-character store name)
{ busybox ? "/bin/busybox", tag ? "storepack" }:
let
  mk = name: script: builtins.derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-e" "-c" script ];
    PATH = "/usr/bin:/bin";
  };
  repeat = n: s: builtins.concatStringsSep "" (builtins.genList (_: s) n);
  # 10 + 190 = 200 characters; with ".drv" 204, under Nix's limit of 211.
  longName = "long-name-" + repeat 19 "abcdefghij";
  # A file name of 230 bytes.
  longFile = "file-" + repeat 9 "0123456789abcdefghij-_=+.";
in rec {
  leaf = mk "${tag}-leaf" ''
    mkdir -p $out/share/empty-dir/nested-empty $out/bin
    printf 'leaf data\n' > $out/share/data
    : > $out/share/empty
    printf '#!/bin/sh\necho leaf\n' > $out/bin/leaf
    chmod 0755 $out/bin/leaf
  '';

  left = mk "${tag}-left" ''
    mkdir $out
    printf '%s\n' ${leaf}/share/data > $out/uses-leaf
  '';

  right = mk "${tag}-right" ''
    mkdir $out
    ln -s ${leaf}/bin/leaf $out/leaf-link
    printf 'no store path in here\n' > $out/plain
  '';

  busyboxItem = mk "${tag}-busybox" ''
    mkdir -p $out/bin
    cp ${busybox} $out/bin/busybox
    chmod 0555 $out/bin/busybox
  '';

  hello = mk "${tag}-hello" ''
    mkdir -p $out/bin
    printf '#!%s sh\necho "hello from storepack"\n' ${busyboxItem}/bin/busybox > $out/bin/hello
    chmod 0555 $out/bin/hello
  '';

  odd = mk "${tag}-odd" ''
    mkdir -p $out/sub/deeper $out/empty-dir $out/B $out/a
    printf '%s\n' "$out" > $out/self
    printf 'shared contents\n' > $out/sub/original
    ln $out/sub/original $out/sub/hard-link
    ln $out/sub/original $out/hard-link-elsewhere
    ln -s does-not-exist $out/dangling
    ln -s /nonexistent/storepack/target $out/dangling-absolute
    ln -s sub $out/sub-link
    ln -s ../sub/original $out/a/up-link
    : > $out/empty
    : > $out/B/empty-executable
    chmod 0755 $out/B/empty-executable
    printf 'long\n' > $out/${longFile}
    printf 'caf\303\251 \346\227\245\346\234\254\n' > "$out/$(printf 'caf\303\251-\346\227\245\346\234\254-\303\274')"
    mkdir "$out/$(printf 'd\303\270r')"
    printf '#!/bin/sh\n' > "$out/$(printf 'd\303\270r')/$(printf 'ex\303\251c')"
    chmod 0755 "$out/$(printf 'd\303\270r')/$(printf 'ex\303\251c')"
    printf 'Z' > $out/Z
    printf '_' > $out/_
    printf 'dash' > $out/-dash
    printf 'tilde' > $out/~tilde
  '';

  link = mk "${tag}-link" ''
    ln -s ${leaf}/share/data $out
  '';

  file = mk "${tag}-file" ''
    printf '#!/bin/sh\necho single file\n' > $out
    chmod 0555 $out
  '';

  long = mk longName ''
    mkdir $out
    printf 'an item with a 200-character name\n' > $out/readme
  '';

  top = mk "${tag}-top" ''
    mkdir -p $out/bin
    printf '%s\n' ${left} ${right} ${odd} ${link} ${file} ${long} > $out/refs
    ln -s ${hello}/bin/hello $out/bin/hello
  '';
}
