import type { ActingRole, Coding } from '../actor';
import type { DocumentRule } from '../../store/visibility';
import type { MatrixView } from './decide';
import { emergencyAllowed, HabilitationMatrix, matrixAllows, MatrixRole, matrixRowFor, patientMayWrite, readableTypes } from './habilitationMatrix';

/** A role without a profession has no row in the matrix, and so no right. */
function matrixRole(role: ActingRole): MatrixRole | undefined {
  return role.profession ? { profession: role.profession, specialties: role.specialties } : undefined;
}

const NOTHING_READABLE = (classSystem: string): DocumentRule => ({ classSystem, classes: [], types: [], excludedTypes: [], typesWithoutClass: [] });

/** The loaded habilitation matrix as the policy reads it. */
export function matrixView(matrix: HabilitationMatrix): MatrixView {
  return {
    readableDocuments(role) {
      const r = matrixRole(role);
      return r ? readableTypes(matrix, r) : NOTHING_READABLE(matrix.systems.documentClass);
    },
    mayWrite(role, type, documentClass) {
      const r = matrixRole(role);
      return r ? matrixAllows(matrix, r, type, documentClass, 'write') : false;
    },
    emergencyAllowed(role) {
      const r = matrixRole(role);
      return r ? emergencyAllowed(matrix, r) : false;
    },
    knowsProfession(role) {
      const r = matrixRole(role);
      return r ? matrixRowFor(matrix, r) !== undefined : false;
    },
    patientMayWrite(type, documentClass) {
      return patientMayWrite(matrix, type, documentClass);
    },
    deviceDeposits(deviceType: Coding | undefined) {
      if (!deviceType) return false;
      const row = matrixRowFor(matrix, { profession: { system: deviceType.system ?? matrix.systems.deviceType, code: deviceType.code }, specialties: [] });
      return row !== undefined && (Object.values(row.cells).some((cell) => cell.write) || row.types.some((t) => t.write === true));
    },
    deviceMayWrite(deviceType: Coding | undefined, type, documentClass) {
      if (!deviceType) return false;
      return matrixAllows(matrix, { profession: { system: deviceType.system ?? matrix.systems.deviceType, code: deviceType.code }, specialties: [] }, type, documentClass, 'write');
    },
  };
}
