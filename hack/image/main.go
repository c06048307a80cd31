// Command ociimage assembles a container image from uncompressed layer tarballs and an
// image config, and writes it as an image archive that `ctr images import` (containerd)
// and `docker load` read. It is the last step of hack/image/build.sh, which makes the
// kascade runtime image without a Docker engine; the layer and image handling is
// go-containerregistry's.
//
// Usage: ociimage -config config.json -tag NAME:TAG -o image.tar LAYER.tar [LAYER.tar...]
//
// config.json holds the OCI image config's "config" object (User, Env, Entrypoint, Cmd,
// WorkingDir, Labels), as written by hack/image/build.sh from runtime-image/Dockerfile.
package main

import (
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	configPath := flag.String("config", "", "JSON file with the image config (User, Env, Entrypoint, ...)")
	tag := flag.String("tag", "", "the image's name and tag")
	out := flag.String("o", "", "where to write the image archive")
	flag.Parse()
	if *configPath == "" || *tag == "" || *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: ociimage -config config.json -tag NAME:TAG -o image.tar LAYER.tar...")
		os.Exit(2)
	}
	if err := build(*configPath, *tag, *out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func build(configPath, tag, out string, layerPaths []string) error {
	raw, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	var config v1.Config
	if err := json.Unmarshal(raw, &config); err != nil {
		return fmt.Errorf("%s: %w", configPath, err)
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("-tag %q: %w", tag, err)
	}
	layers := make([]v1.Layer, 0, len(layerPaths))
	for _, path := range layerPaths {
		// fast compression: the archive is imported on this machine, not shipped
		layer, err := tarball.LayerFromFile(path, tarball.WithCompressionLevel(gzip.BestSpeed))
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		layers = append(layers, layer)
	}
	image, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return err
	}
	file, err := image.ConfigFile()
	if err != nil {
		return err
	}
	file = file.DeepCopy()
	file.Architecture = "amd64"
	file.OS = "linux"
	file.Config = config
	// a fixed creation time: the same inputs give the same image ID
	file.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	image, err = mutate.ConfigFile(image, file)
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, image); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, out)
}
