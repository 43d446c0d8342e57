import { describe, expect, it } from 'vitest';
import { DssnapError } from '../../src/errors.js';
import { type AzureError, isAzureNotFound, isAzurePermanent, toAzureError } from './errors.js';

function restError(statusCode: number | undefined, code: string | undefined, message: string): Error {
  return Object.assign(new Error(message), { name: 'RestError', statusCode, code });
}

const denied =
  "The client 'c' with object id 'c' does not have authorization to perform action 'Microsoft.Compute/disks/write' over scope '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/d' or the scope is invalid.";

describe('Azure error classification', () => {
  it.each<[string, Error, { notFound: boolean; permanent: boolean }]>([
    ['404 ResourceNotFound', restError(404, 'ResourceNotFound', 'gone'), { notFound: true, permanent: true }],
    ['404 NotFound', restError(404, 'NotFound', 'gone'), { notFound: true, permanent: true }],
    [
      '404 ResourceGroupNotFound',
      restError(404, 'ResourceGroupNotFound', 'no rg'),
      { notFound: false, permanent: true },
    ],
    [
      '403 AuthorizationFailed',
      restError(403, 'AuthorizationFailed', denied),
      { notFound: false, permanent: true },
    ],
    [
      '401 InvalidAuthenticationToken',
      restError(401, 'InvalidAuthenticationToken', 'bad'),
      { notFound: false, permanent: true },
    ],
    ['400 InvalidParameter', restError(400, 'InvalidParameter', 'bad'), { notFound: false, permanent: true }],
    [
      '409 OperationNotAllowed',
      restError(409, 'OperationNotAllowed', 'busy'),
      { notFound: false, permanent: false },
    ],
    ['409 Conflict', restError(409, 'Conflict', 'busy'), { notFound: false, permanent: false }],
    [
      '409 PropertyChangeNotAllowed',
      restError(409, 'PropertyChangeNotAllowed', 'no'),
      { notFound: false, permanent: true },
    ],
    [
      '429 TooManyRequests',
      restError(429, 'TooManyRequests', 'slow down'),
      { notFound: false, permanent: false },
    ],
    [
      '500 InternalServerError',
      restError(500, 'InternalServerError', 'oops'),
      { notFound: false, permanent: false },
    ],
    ['503 without a code', restError(503, undefined, 'unavailable'), { notFound: false, permanent: false }],
    [
      'a connection reset',
      restError(undefined, 'ECONNRESET', 'socket hang up'),
      { notFound: false, permanent: false },
    ],
    [
      'a failed operation (InternalExecutionError)',
      new Error(
        'The long-running operation has failed. InternalExecutionError. An internal execution error occurred.',
      ),
      { notFound: false, permanent: false },
    ],
    [
      'a failed operation (BadRequest)',
      new Error('The long-running operation has failed. BadRequest. The disk size is invalid.'),
      { notFound: false, permanent: true },
    ],
    [
      'a network error',
      new Error('getaddrinfo ENOTFOUND management.azure.com'),
      { notFound: false, permanent: false },
    ],
    [
      'no credential in the chain',
      Object.assign(new Error('DefaultAzureCredential failed to retrieve a token'), {
        name: 'CredentialUnavailableError',
      }),
      { notFound: false, permanent: true },
    ],
  ])('%s', (_name, error, expected) => {
    const translated = toAzureError('create disk d', error);

    expect({ notFound: isAzureNotFound(translated), permanent: isAzurePermanent(translated) }).toEqual(
      expected,
    );
    expect({ notFound: isAzureNotFound(error), permanent: isAzurePermanent(error) }).toMatchObject(
      error.name === 'RestError' ? expected : {},
    );
  });

  it('names the refused RBAC action, with a hint to grant it', () => {
    const translated = toAzureError(
      'create disk d',
      restError(403, 'AuthorizationFailed', denied),
    ) as AzureError;

    expect(translated.action).toBe('Microsoft.Compute/disks/write');
    expect(translated.message).toBe(
      "Azure refused to create disk d: the identity lacks the RBAC permission 'Microsoft.Compute/disks/write' (AuthorizationFailed)",
    );
    expect(translated.hint).toMatch(/^Grant 'Microsoft\.Compute\/disks\/write' to the VM's managed identity/);
    expect(translated.exitCode).toBe(1);
  });

  it('passes DssnapErrors through and turns an abort into INTERRUPTED', () => {
    const own = new DssnapError('UNSUPPORTED', 'not on Azure');
    const abort = Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });

    expect(toAzureError('x', own)).toBe(own);
    expect(toAzureError('read disk d', abort)).toMatchObject({ code: 'INTERRUPTED' });
    expect(isAzurePermanent(own)).toBe(true);
  });
});
