-- AlterTable
ALTER TABLE "Device" ADD COLUMN     "enrollingUntil" TIMESTAMP(3);
