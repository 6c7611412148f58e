$(eval $(call add_lib,oci,common,$(call pc,libcrypto jansson)))
