# runner: namespaces, rootfs, mounts, SageMaker channels, seccomp, caps, cgroups.
$(eval $(call add_lib,runner,oci common,$(call pc,libarchive) $(call pc,libseccomp) $(call pc,libcap)))
