"""The data plane: desired state -> render() -> one nft transaction in the lb namespace.

    desired.py   the desired state, from the database plus runtime state (pure data)
    render.py    desired state -> Ruleset -> a full nft script, or the difference of two
    nft.py       the one seam to nftables (the nft command)
    conntrack.py the one seam to conntrack
    apply.py     the dataplane worker's action: render, apply, cut, record
"""
