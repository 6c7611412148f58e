$(eval $(call add_lib,common,,$(call pc,jansson) -lpthread))
