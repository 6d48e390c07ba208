// SPDX-License-Identifier: MIT
pragma solidity ^0.8.37;

import {IERC8004ValidationRegistry} from "./interfaces/IERC8004ValidationRegistry.sol";

/// @title WorkProof ValidationRegistry
/// @notice An open, append-only registry of verification attestations. Anyone may
///         attest; the verifier of an attestation is always `msg.sender`. Attestations
///         can never be updated or deleted.
/// @dev Storage layout, chosen for gas (see contracts/README.md for the measurements):
///
///      * `_records[id]` is ONE packed slot per attestation:
///            bits   0..159  pointer: address of the blob contract (below), never zero
///            bits 160..223  timestamp (uint64, block.timestamp of the write)
///            bits 224..231  result (0 or 1)
///            bits 232..255  sequence of the attestation within its task (1-based, uint24)
///      * Everything else immutable lives in the runtime code of a data contract created
///        by this registry with CREATE ("SSTORE2"): 200 gas per byte of code instead of
///        22,100 gas per 32-byte storage slot. Blob layout (offsets in bytes):
///            0        0x00 (STOP, so the blob can never be executed meaningfully)
///            1..32    taskHash
///            33..52   verifier (20 bytes)
///            53..84   id of the previous attestation of the same task (0 for the first)
///            85       length m of verificationMethod (1..MAX_METHOD_LENGTH)
///            86..     verificationMethod (m bytes), then proofData (the rest of the code)
///        A blob contract has no code path that can change or destroy it, so the record
///        is as immutable as contract storage that nothing writes.
///      * `_latest[taskHash]` is the newest attestation id of a task; older ones are
///        reached through the `prev` links in the blobs (a per-task linked list, oldest
///        first once reversed), so the per-task index costs one slot per task plus
///        32 bytes of blob per attestation instead of a growing storage array.
///      * `_stats[verifier]` packs VerifierStats into one slot: total, successful,
///        first time, last time as four uint64 values (low to high bits).
contract ValidationRegistry {
    // ---------------------------------------------------------------- types

    /// @notice The attestation as returned by the getters (field order is part of the ABI).
    struct Attestation {
        bytes32 taskHash;
        address verifier;
        string verificationMethod;
        bool result;
        uint256 timestamp;
        bytes proofData;
    }

    /// @notice Per-verifier counters (ABI-identical to the published 4-uint256 tuple
    ///         `(total, successful, firstAttestation, lastAttestation)`).
    struct VerifierStats {
        uint256 totalAttestations;
        uint256 successfulAttestations;
        uint256 firstAttestationTime;
        uint256 lastAttestationTime;
    }

    // ------------------------------------------------------------ constants

    /// @notice ERC-8004 response value written for a true (VALID) result.
    uint8 public constant RESPONSE_VALID = 100;
    /// @notice ERC-8004 response value written for a false (INVALID) result.
    uint8 public constant RESPONSE_INVALID = 0;
    /// @notice Longest accepted verificationMethod, in bytes (its length is one blob byte).
    uint256 public constant MAX_METHOD_LENGTH = 128;
    /// @notice Largest accepted proofData, in bytes. Keeps every blob well under the
    ///         24,576-byte code size limit (EIP-170); bigger evidence belongs off-chain.
    uint256 public constant MAX_PROOF_DATA_LENGTH = 16384;
    /// @notice Most attestations one taskHash can collect (the per-task sequence is 24 bits).
    uint256 public constant MAX_ATTESTATIONS_PER_TASK = type(uint24).max;

    uint256 private constant BLOB_HEADER = 86; // STOP + taskHash + verifier + prev + methodLen
    uint256 private constant OFF_TASK = 1;
    uint256 private constant OFF_VERIFIER = 33;
    uint256 private constant OFF_PREV = 53;
    uint256 private constant OFF_METHOD_LEN = 85;

    // ---------------------------------------------------------------- state

    /// @notice The ERC-8004 Validation Registry that attestValidationFor forwards to;
    ///         address(0) when forwarding is off. Fixed at deployment.
    address public immutable erc8004ValidationRegistry;

    /// @notice Number of attestations ever written; also the nonce of the next id.
    uint256 public attestationCount;

    mapping(bytes32 id => uint256 packed) private _records;
    mapping(bytes32 taskHash => bytes32 id) private _latest;
    mapping(address verifier => uint256 packed) private _stats;

    // --------------------------------------------------------------- events

    /// @notice Emitted for every attestation written (by either entry point).
    event AttestationRecorded(
        bytes32 indexed attestationId,
        bytes32 indexed taskHash,
        address indexed verifier,
        bool result,
        string verificationMethod
    );

    /// @notice ERC-8004-shaped view of the same write, emitted right after
    ///         AttestationRecorded. requestHash is the taskHash for attestValidation and
    ///         the caller's ERC-8004 requestHash for attestValidationFor; response is
    ///         100 (true) or 0 (false); tag is keccak256(bytes(verificationMethod));
    ///         attestationId is also what is forwarded to ERC-8004 as responseHash.
    ///         (Its topic0 differs from ERC-8004's own ValidationResponse event on purpose.)
    event ValidationResponse(
        address indexed validator, bytes32 indexed requestHash, bytes32 indexed attestationId, uint8 response, bytes32 tag
    );

    // --------------------------------------------------------------- errors

    error ZeroTaskHash();
    error ZeroRequestHash();
    error EmptyVerificationMethod();
    error VerificationMethodTooLong(uint256 length, uint256 maxLength);
    error ProofDataTooLarge(uint256 length, uint256 maxLength);
    error TooManyAttestationsForTask(bytes32 taskHash);
    error AttestationNotFound(bytes32 attestationId);
    error NoAttestationsForTask(bytes32 taskHash);
    error StorageWriteFailed();
    error ERC8004RegistryNotContract(address registry);
    error ERC8004ForwardFailed(bytes32 requestHash, bytes reason);

    // ---------------------------------------------------------- constructor

    /// @param erc8004Registry the ERC-8004 Validation Registry to forward to from
    ///        attestValidationFor, or address(0) for none. Must hold code when non-zero.
    constructor(address erc8004Registry) {
        if (erc8004Registry != address(0) && erc8004Registry.code.length == 0) {
            revert ERC8004RegistryNotContract(erc8004Registry);
        }
        erc8004ValidationRegistry = erc8004Registry;
    }

    // --------------------------------------------------------------- writes

    /// @notice Record an attestation by msg.sender about taskHash.
    /// @return attestationId keccak256(abi.encode(block.chainid, address(this), nonce,
    ///         msg.sender, taskHash)) where nonce = attestationCount before the call.
    function attestValidation(
        bytes32 taskHash,
        string calldata verificationMethod,
        bool result,
        bytes calldata proofData
    ) external returns (bytes32 attestationId) {
        (attestationId,) = _attest(taskHash, taskHash, verificationMethod, result, proofData);
    }

    /// @notice Same as attestValidation, for an ERC-8004 validation request: the
    ///         ValidationResponse event carries requestHash, and when an ERC-8004
    ///         Validation Registry was configured at deployment this also calls its
    ///         validationResponse(requestHash, 100|0, "", attestationId, verificationMethod).
    ///         On that registry the validatorAddress is THIS contract (the caller of
    ///         validationResponse), so the request must name this registry as validator;
    ///         the real verifier is the attestation's `verifier` (look it up with
    ///         getAttestation(responseHash)). A failing forward reverts the whole call.
    function attestValidationFor(
        bytes32 requestHash,
        bytes32 taskHash,
        string calldata verificationMethod,
        bool result,
        bytes calldata proofData
    ) external returns (bytes32 attestationId) {
        if (requestHash == bytes32(0)) revert ZeroRequestHash();
        uint8 response;
        (attestationId, response) = _attest(requestHash, taskHash, verificationMethod, result, proofData);

        address registry = erc8004ValidationRegistry;
        if (registry != address(0)) {
            // Interaction last: every state change of this call is already done.
            try IERC8004ValidationRegistry(registry).validationResponse(
                requestHash, response, "", attestationId, verificationMethod
            ) {} catch (bytes memory reason) {
                revert ERC8004ForwardFailed(requestHash, reason);
            }
        }
    }

    // ---------------------------------------------------------------- reads

    /// @notice The attestation with this id; reverts AttestationNotFound if none.
    function getAttestation(bytes32 attestationId) external view returns (Attestation memory) {
        uint256 rec = _records[attestationId];
        if (rec == 0) revert AttestationNotFound(attestationId);
        return _load(rec);
    }

    /// @notice The newest attestation of taskHash; reverts NoAttestationsForTask if none.
    function getLatestAttestation(bytes32 taskHash) external view returns (Attestation memory) {
        bytes32 id = _latest[taskHash];
        if (id == bytes32(0)) revert NoAttestationsForTask(taskHash);
        return _load(_records[id]);
    }

    /// @notice Id of the newest attestation of taskHash, or bytes32(0) if none.
    function getLatestAttestationId(bytes32 taskHash) external view returns (bytes32) {
        return _latest[taskHash];
    }

    /// @notice All attestation ids of taskHash, oldest first; empty if none.
    /// @dev Walks the per-task links: O(n) reads, meant for eth_call.
    function getAttestationsForTask(bytes32 taskHash) external view returns (bytes32[] memory ids) {
        bytes32 id = _latest[taskHash];
        if (id == bytes32(0)) return ids;
        uint256 n = _records[id] >> 232;
        ids = new bytes32[](n);
        while (n > 0) {
            ids[--n] = id;
            if (n > 0) id = _prevId(address(uint160(_records[id])));
        }
    }

    /// @notice Number of attestations of taskHash.
    function getAttestationCountForTask(bytes32 taskHash) external view returns (uint256) {
        bytes32 id = _latest[taskHash];
        return id == bytes32(0) ? 0 : _records[id] >> 232;
    }

    /// @notice Counters of a verifier (all zero for one that never attested).
    function getVerifierStats(address verifier) external view returns (VerifierStats memory stats) {
        uint256 p = _stats[verifier];
        stats.totalAttestations = uint64(p);
        stats.successfulAttestations = uint64(p >> 64);
        stats.firstAttestationTime = uint64(p >> 128);
        stats.lastAttestationTime = uint64(p >> 192);
    }

    /// @notice True when attestationId names a recorded attestation.
    function attestationExists(bytes32 attestationId) external view returns (bool) {
        return _records[attestationId] != 0;
    }

    /// @notice The id the registry gives the attestation number `nonce` (0-based) written
    ///         by `verifier` about `taskHash` on this chain and this registry.
    function computeAttestationId(uint256 nonce, address verifier, bytes32 taskHash) public view returns (bytes32) {
        return keccak256(abi.encode(block.chainid, address(this), nonce, verifier, taskHash));
    }

    // ------------------------------------------------------------- internal

    function _attest(
        bytes32 requestHash,
        bytes32 taskHash,
        string calldata method,
        bool result,
        bytes calldata proofData
    ) private returns (bytes32 id, uint8 response) {
        if (taskHash == bytes32(0)) revert ZeroTaskHash();
        {
            uint256 mlen = bytes(method).length;
            if (mlen == 0) revert EmptyVerificationMethod();
            if (mlen > MAX_METHOD_LENGTH) revert VerificationMethodTooLong(mlen, MAX_METHOD_LENGTH);
            if (proofData.length > MAX_PROOF_DATA_LENGTH) {
                revert ProofDataTooLarge(proofData.length, MAX_PROOF_DATA_LENGTH);
            }
        }

        uint256 nonce = attestationCount;
        id = computeAttestationId(nonce, msg.sender, taskHash);
        unchecked {
            attestationCount = nonce + 1; // one increment per paid write: cannot reach 2**256
        }

        bytes32 prev = _latest[taskHash];
        uint256 seq = 1;
        if (prev != bytes32(0)) {
            seq = (_records[prev] >> 232) + 1;
            if (seq > MAX_ATTESTATIONS_PER_TASK) revert TooManyAttestationsForTask(taskHash);
        }

        address pointer = _writeBlob(taskHash, prev, method, proofData);
        _records[id] =
            uint256(uint160(pointer)) | (uint256(uint64(block.timestamp)) << 160) | (_bit(result) << 224) | (seq << 232);
        _latest[taskHash] = id;
        _countForVerifier(result);

        response = result ? RESPONSE_VALID : RESPONSE_INVALID;
        emit AttestationRecorded(id, taskHash, msg.sender, result, method);
        emit ValidationResponse(msg.sender, requestHash, id, response, keccak256(bytes(method)));
    }

    /// Update msg.sender's packed VerifierStats. The uint64 counters cannot realistically
    /// overflow (each increment is a paid transaction).
    function _countForVerifier(bool result) private {
        uint256 s = _stats[msg.sender];
        uint256 ts = uint64(block.timestamp);
        uint256 first = s == 0 ? ts : uint64(s >> 128);
        _stats[msg.sender] = (uint64(s) + 1) | ((uint64(s >> 64) + _bit(result)) << 64) | (first << 128) | (ts << 192);
    }

    function _bit(bool b) private pure returns (uint256 r) {
        assembly ("memory-safe") {
            r := b
        }
    }

    /// Create the blob contract holding the immutable part of an attestation.
    /// Creation code: PUSH2 len, DUP1, PUSH1 0x0a, RETURNDATASIZE, CODECOPY,
    /// RETURNDATASIZE, RETURN (10 bytes), followed by the blob it returns as runtime code.
    /// len <= 86 + 128 + 16384 fits in 16 bits and under the EIP-170 limit.
    function _writeBlob(bytes32 taskHash, bytes32 prev, string calldata method, bytes calldata proofData)
        private
        returns (address pointer)
    {
        bytes memory initCode = abi.encodePacked(
            hex"61",
            uint16(BLOB_HEADER + bytes(method).length + proofData.length),
            hex"80600a3d393df3",
            hex"00",
            taskHash,
            msg.sender,
            prev,
            uint8(bytes(method).length),
            method,
            proofData
        );
        assembly ("memory-safe") {
            pointer := create(0, add(initCode, 0x20), mload(initCode))
        }
        if (pointer == address(0)) revert StorageWriteFailed();
    }

    /// Decode a packed record and its blob into the ABI struct.
    function _load(uint256 rec) private view returns (Attestation memory a) {
        bytes memory blob = address(uint160(rec)).code;
        uint256 mlen = uint8(blob[OFF_METHOD_LEN]);
        bytes32 taskHash;
        bytes32 verifierWord;
        assembly ("memory-safe") {
            taskHash := mload(add(add(blob, 0x20), OFF_TASK))
            verifierWord := mload(add(add(blob, 0x20), OFF_VERIFIER))
        }
        a.taskHash = taskHash;
        a.verifier = address(bytes20(verifierWord));
        a.verificationMethod = string(_slice(blob, BLOB_HEADER, mlen));
        a.result = (rec >> 224) & 1 == 1;
        a.timestamp = uint64(rec >> 160);
        a.proofData = _slice(blob, BLOB_HEADER + mlen, blob.length - BLOB_HEADER - mlen);
    }

    /// The `prev` link of a blob, read with a 32-byte EXTCODECOPY.
    function _prevId(address pointer) private view returns (bytes32 prev) {
        assembly ("memory-safe") {
            extcodecopy(pointer, 0x00, OFF_PREV, 0x20) // scratch space
            prev := mload(0x00)
        }
    }

    /// A fresh copy of src[start, start + len).
    function _slice(bytes memory src, uint256 start, uint256 len) private pure returns (bytes memory out) {
        out = new bytes(len);
        assembly ("memory-safe") {
            mcopy(add(out, 0x20), add(add(src, 0x20), start), len)
        }
    }
}
