"""FuseSoC generator of the TinyCL core: runs tinycl_hdl's generator on the GAPI file."""

from tinycl_hdl.flows.fusesoc import main

if __name__ == "__main__":
    main()
