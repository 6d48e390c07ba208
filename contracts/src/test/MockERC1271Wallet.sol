// SPDX-License-Identifier: MIT
pragma solidity ^0.8.37;

/// @title MockERC1271Wallet: TESTS ONLY.
/// @notice A smart-contract wallet whose EIP-1271 isValidSignature accepts a 65-byte
///         ECDSA signature (r||s||v) of the digest by its owner, and nothing else.
contract MockERC1271Wallet {
    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 digest, bytes calldata signature) external view returns (bytes4) {
        if (signature.length != 65) return 0xffffffff;
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        address signer = ecrecover(digest, v, r, s);
        return signer != address(0) && signer == owner ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }
}
