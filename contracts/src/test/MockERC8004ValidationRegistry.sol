// SPDX-License-Identifier: MIT
pragma solidity ^0.8.37;

import {IERC8004ValidationRegistry} from "../interfaces/IERC8004ValidationRegistry.sol";

/// @title MockERC8004ValidationRegistry: TESTS ONLY.
/// @notice A stand-in for the remote ERC-8004 Validation Registry (not deployable here:
///         the real one is an upgradeable contract tied to an Identity Registry). It keeps
///         the reference implementation's request/response rules and revert strings
///         ("bad validator", "exists", "unknown", "not validator", "resp>100") but skips
///         the Identity Registry ownership check: any caller may open a request.
contract MockERC8004ValidationRegistry is IERC8004ValidationRegistry {
    struct ValidationStatus {
        address validatorAddress;
        uint256 agentId;
        uint8 response;
        bytes32 responseHash;
        string tag;
        uint256 lastUpdate;
        bool hasResponse;
    }

    mapping(bytes32 requestHash => ValidationStatus) private _status;
    mapping(bytes32 requestHash => bool) private _exists;
    /// @notice Number of validationResponse calls accepted (for tests).
    uint256 public responseCount;

    function validationRequest(address validatorAddress, uint256 agentId, string calldata requestURI, bytes32 requestHash)
        external
    {
        require(validatorAddress != address(0), "bad validator");
        require(!_exists[requestHash], "exists");
        _exists[requestHash] = true;
        _status[requestHash].validatorAddress = validatorAddress;
        _status[requestHash].agentId = agentId;
        emit ValidationRequest(validatorAddress, agentId, requestURI, requestHash);
    }

    function validationResponse(
        bytes32 requestHash,
        uint8 response,
        string calldata responseURI,
        bytes32 responseHash,
        string calldata tag
    ) external {
        require(_exists[requestHash], "unknown");
        ValidationStatus storage s = _status[requestHash];
        require(msg.sender == s.validatorAddress, "not validator");
        require(response <= 100, "resp>100");
        s.response = response;
        s.responseHash = responseHash;
        s.tag = tag;
        s.lastUpdate = block.timestamp;
        s.hasResponse = true;
        responseCount += 1;
        emit ValidationResponse(s.validatorAddress, s.agentId, requestHash, response, responseURI, responseHash, tag);
    }

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
        )
    {
        require(_exists[requestHash], "unknown");
        ValidationStatus storage s = _status[requestHash];
        return (s.validatorAddress, s.agentId, s.response, s.responseHash, s.tag, s.lastUpdate);
    }
}
