#!/usr/bin/env bash
# Refreshes the explorer's vendored JavaScript (api/explorer/vendor/) from the npm registry, as
# api/explorer/vendor/manifest.json pins it: for each package, `npm pack` of the exact version
# into a temporary directory, the tarball's sha512 checked against the manifest's integrity (and
# against what npm itself reports), then only the listed ES module files copied, under flat
# names, with their relative imports rewritten to those names. The node serves
# /explorer/<name> with one path segment only (api/src/routes.rs), so no file may import a path
# with a directory in it; a relative import of a file the manifest does not list fails the run.
#
# Usage: scripts/vendor-explorer.sh          write the files (then rebuild: they are compiled
#                                            into scf-node by api/src/explorer.rs)
#        scripts/vendor-explorer.sh --check  change nothing; fail if the checked-in files are
#                                            not exactly what the pinned tarballs give
#
# To move to a new version: change "version" in the manifest, run this once (it fails with the
# tarball's real integrity, which `npm view NAME@VERSION dist.integrity` also gives), check that
# integrity against the registry, put it in the manifest, run again, and run the explorer tests.
# Needs Node.js and npm; CI does not run it (the vendored files are checked in).
set -euo pipefail
cd "$(dirname "$0")/.."
vendor=api/explorer/vendor
manifest=$vendor/manifest.json
check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
for tool in node npm tar; do
  command -v "$tool" >/dev/null || { echo "vendor-explorer: $tool is not installed" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/out"

# One line per package: name, version, integrity, license file name.
packages=$(node -e '
  const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  for (const p of m.packages) console.log([p.name, p.version, p.integrity, p.license].join(" "));
' "$manifest")

while read -r name version integrity license; do
  echo "vendor-explorer: $name@$version" >&2
  packed=$(cd "$tmp" && npm pack --silent --json "$name@$version")
  tarball=$(node -e 'const p = JSON.parse(process.argv[1])[0]; console.log(p.filename)' "$packed")
  reported=$(node -e 'const p = JSON.parse(process.argv[1])[0]; console.log(p.integrity)' "$packed")
  actual="sha512-$(node -e '
    const data = require("fs").readFileSync(process.argv[1]);
    console.log(require("crypto").createHash("sha512").update(data).digest("base64"));
  ' "$tmp/$tarball")"
  if [[ "$actual" != "$integrity" || "$reported" != "$integrity" ]]; then
    echo "vendor-explorer: INTEGRITY MISMATCH for $name@$version" >&2
    echo "  manifest:          $integrity" >&2
    echo "  tarball's sha512:  $actual" >&2
    echo "  npm reported:      $reported" >&2
    exit 1
  fi
  unpacked="$tmp/unpacked-${tarball%.tgz}"
  mkdir -p "$unpacked"
  tar -xzf "$tmp/$tarball" -C "$unpacked"
  cp "$unpacked/package/LICENSE" "$tmp/out/$license"
  # Copy each listed file under its flat name, rewriting `from "./x.js"` to the flat name of x.
  node -e '
    const fs = require("fs");
    const [manifest, name, from, to] = process.argv.slice(1);
    const pkg = JSON.parse(fs.readFileSync(manifest, "utf8")).packages.find((p) => p.name === name);
    for (const [file, flat] of Object.entries(pkg.files)) {
      let text = fs.readFileSync(`${from}/${file}`, "utf8");
      text = text.replace(/(\bfrom\s*|\bimport\s*\(?\s*)(["\x27])(\.{1,2}\/[^"\x27]*)\2/g, (all, head, quote, path) => {
        const target = path.replace(/^\.\//, "");
        const renamed = pkg.files[target];
        if (!renamed) {
          console.error(`vendor-explorer: ${name}/${file} imports ${path}, which the manifest does not list`);
          process.exit(1);
        }
        return `${head}${quote}./${renamed}${quote}`;
      });
      if (/sourceMappingURL/.test(text)) {
        console.error(`vendor-explorer: ${name}/${file} names a source map, which is not vendored`);
        process.exit(1);
      }
      fs.writeFileSync(`${to}/${flat}`, text);
    }
  ' "$manifest" "$name" "$unpacked/package" "$tmp/out"
done <<<"$packages"

if ((check)); then
  status=0
  for file in "$tmp/out"/*; do
    cmp -s "$file" "$vendor/$(basename "$file")" || { echo "vendor-explorer: $vendor/$(basename "$file") differs" >&2; status=1; }
  done
  for file in "$vendor"/*; do
    base=$(basename "$file")
    [[ "$base" == manifest.json || "$base" == VENDORED.md || -e "$tmp/out/$base" ]] || {
      echo "vendor-explorer: $vendor/$base is not in the manifest" >&2
      status=1
    }
  done
  ((status == 0)) && echo "vendor-explorer: $vendor is what the manifest pins" >&2
  exit "$status"
fi
cp "$tmp/out"/* "$vendor/"
echo "vendor-explorer: wrote $(ls "$tmp/out" | wc -l) files to $vendor" >&2
