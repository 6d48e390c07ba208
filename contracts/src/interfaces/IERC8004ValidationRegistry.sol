// SPDX-License-Identifier: MIT
pragma solidity ^0.8.37;

/// @title ERC-8004 ("Trustless Agents") Validation Registry, the subset WorkProof calls.
/// @notice Signatures copied from ERC8004SPEC.md (erc-8004/erc-8004-contracts, the
///         Jan/Feb 2026 revision: `string tag`, `responseURI` spelling). The Validation
///         Registry part of ERC-8004 is still a draft under active change; if the
///         deployed registry uses the older `bytes32 tag` form, this interface (and the
///         selector WorkProof calls) has to follow it.
interface IERC8004ValidationRegistry {
    /// Emitted by the registry when the agent owner names a validator.
    event ValidationRequest(
        address indexed validatorAddress, uint256 indexed agentId, string requestURI, bytes32 indexed requestHash
    );

    /// Emitted by the registry for every response (may repeat for one requestHash).
    event ValidationResponse(
        address indexed validatorAddress,
        uint256 indexed agentId,
        bytes32 indexed requestHash,
        uint8 response,
        string responseURI,
        bytes32 responseHash,
        string tag
    );

    /// Called by the owner/operator of agentId.
    function validationRequest(address validatorAddress, uint256 agentId, string calldata requestURI, bytes32 requestHash)
        external;

    /// Called by the validatorAddress named in the request; response is 0..100.
    function validationResponse(
        bytes32 requestHash,
        uint8 response,
        string calldata responseURI,
        bytes32 responseHash,
        string calldata tag
    ) external;

    function getValidationStatus(bytes32 requestHash)
        external
        view
        returns (
            address validatorAddress,
            uint256 agentId,
            uint8 response,
            bytes32 responseHash,
            string memory tag,
            uint256 lastUpdate
        );
}
