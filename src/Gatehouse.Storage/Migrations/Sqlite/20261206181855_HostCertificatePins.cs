using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class HostCertificatePins : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "CertificatePin",
                table: "Hosts",
                type: "TEXT",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "CertificatePinnedAt",
                table: "Hosts",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "CertificatePinnedBy",
                table: "Hosts",
                type: "TEXT",
                maxLength: 16,
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "CertificatePin",
                table: "Hosts");

            migrationBuilder.DropColumn(
                name: "CertificatePinnedAt",
                table: "Hosts");

            migrationBuilder.DropColumn(
                name: "CertificatePinnedBy",
                table: "Hosts");
        }
    }
}
