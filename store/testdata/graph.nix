# A small graph of store items with references, for the store package's
# tests (TestClosureNix): nix-build it and compare with nix-store -qR.
#
#   top  -> mid1, mid2, mid3        top2 -> mid3, leaf1
#   mid1 -> leaf1 (only through a symlink target)
#   mid2 -> leaf1, leaf2            mid3 -> leaf2
#   leaf1 -> leaf1 (its own path in its contents)
let
  item = name: script: builtins.derivation {
    name = "storepack-store-test-${name}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
  };
  leaf1 = item "leaf1" "echo $out > $out";
  leaf2 = item "leaf2" "echo leaf2 > $out";
  mid1 = item "mid1" "mkdir $out && ln -s ${leaf1} $out/leaf";
  mid2 = item "mid2" "echo ${leaf1} ${leaf2} > $out";
  mid3 = item "mid3" "mkdir -p $out/share && echo ${leaf2}/x > $out/share/ref";
  top = item "top" "echo ${mid1} ${mid2} ${mid3} > $out";
  top2 = item "top2" "echo ${mid3} ${leaf1} > $out";
in
{ inherit leaf1 leaf2 mid1 mid2 mid3 top top2; }
