# registry: the distribution-spec server (libmicrohttpd) and the push/pull client (libcurl).
$(eval $(call add_lib,registry,oci common,$(call pc,libmicrohttpd) $(call pc,libcurl) -lcrypt -lpthread))
