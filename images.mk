# kubevm's images, built locally and imported into the local cluster's containerd.
.PHONY: images
images: deps
	@bash scripts/build-images.sh
