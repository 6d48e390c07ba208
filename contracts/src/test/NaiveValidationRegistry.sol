// SPDX-License-Identifier: MIT
pragma solidity ^0.8.37;

/// @title NaiveValidationRegistry: TESTS ONLY (gas anchor).
/// @notice The straightforward layout of the seed's model: the whole Attestation struct
///         in storage, a bytes32[] per task, a 4-slot stats struct, a global nonce. The
///         gas test measures it beside ValidationRegistry in the same run, so the saving
///         of the packed/SSTORE2 layout is a measurement, not a claim.
contract NaiveValidationRegistry {
    struct Attestation {
        bytes32 taskHash;
        address verifier;
        string verificationMethod;
        bool result;
        uint256 timestamp;
        bytes proofData;
    }

    struct VerifierStats {
        uint256 totalAttestations;
        uint256 successfulAttestations;
        uint256 firstAttestationTime;
        uint256 lastAttestationTime;
    }

    uint256 public nonce;
    mapping(bytes32 => Attestation) public attestations;
    mapping(bytes32 => bytes32[]) public taskAttestations;
    mapping(address => VerifierStats) public verifierStats;

    event AttestationRecorded(
        bytes32 indexed attestationId, bytes32 indexed taskHash, address indexed verifier, bool result, string verificationMethod
    );

    function attestValidation(bytes32 taskHash, string calldata verificationMethod, bool result, bytes calldata proofData)
        external
        returns (bytes32 id)
    {
        id = keccak256(abi.encode(block.chainid, address(this), nonce++, msg.sender, taskHash));
        attestations[id] = Attestation(taskHash, msg.sender, verificationMethod, result, block.timestamp, proofData);
        taskAttestations[taskHash].push(id);
        VerifierStats storage s = verifierStats[msg.sender];
        if (s.totalAttestations == 0) s.firstAttestationTime = block.timestamp;
        s.totalAttestations += 1;
        if (result) s.successfulAttestations += 1;
        s.lastAttestationTime = block.timestamp;
        emit AttestationRecorded(id, taskHash, msg.sender, result, verificationMethod);
    }
}
